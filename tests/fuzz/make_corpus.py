#!/usr/bin/env python3
"""Writes the codec fuzzer's seed corpus to corpus/codec/.

Each file is one config byte (see codec_fuzz.cc: bit 7 = MQTT 3.1, bit 6 = small size limit,
bits 0-5 = chunking step) followed by the bytes a peer would send. Seeds cover every packet type
plus the edge cases the decoder has special paths for. Re-run after editing; commit the files.
"""
import os

SEEDS = {
    # one per packet type, fed in one piece
    "connect": "00 10 0d 0004 4d515454 04 02 003c 0001 63",
    "connect_full": "00 10 19 0004 4d515454 04 ec 000a 0001 63 0001 74 0001 6d 0001 75 0001 70",
    "connect_v31": "00 10 0f 0006 4d5149736470 03 02 003c 0001 63",
    "connack": "00 20 02 01 00",
    "publish_qos0": "00 30 06 0003 612f62 78",
    "publish_qos1": "00 33 08 0003 612f62 0001 78",
    "publish_qos2_dup": "00 3c 07 0003 612f62 1234",
    "puback": "00 40 02 0001",
    "pubrec": "00 50 02 0002",
    "pubrel": "00 62 02 0003",
    "pubcomp": "00 70 02 0004",
    "subscribe": "00 82 0c 0001 0003 612f2b 00 0001 23 02",
    "suback": "00 90 06 0001 00 01 02 80",
    "unsubscribe": "00 a2 07 0001 0003 612f62",
    "unsuback": "00 b0 02 0009",
    "pingreq": "00 c0 00",
    "pingresp": "00 d0 00",
    "disconnect": "00 e0 00",
    # edge cases
    "session_bytewise": "01 10 0d 0004 4d515454 04 02 003c 0001 63 82 08 0001 0003 612f62 01"
                        " 32 08 0003 612f62 0001 78 c0 00 e0 00",
    "session_chunks7": "07 10 0d 0004 4d515454 04 02 003c 0001 63 30 06 0003 612f62 78"
                       " 30 06 0003 612f62 78 a2 07 0001 0003 612f62",
    "v31_subscribe_dup": "85 10 0f 0006 4d5149736470 03 02 003c 0001 63 8a 08 0001 0003 612f62 01",
    "two_byte_length": "03 30 82 01 0001 74" + " 78" * 127,
    "too_large": "40 30 ff ff ff 7f",
    "five_byte_length": "00 30 ff ff ff ff 01",
    "utf8_topic": "00 30 0e 000b e282ac2ff09d849e2fc3a9 78",
    "bad_utf8_surrogate": "00 30 06 0003 eda080 78",
    "sys_topic": "00 30 0d 000b 24535953 2f62726f6b6572",
    "connect_mqtt5": "00 10 0d 0004 4d515454 05 02 003c 0001 63",
    "partial_tail": "02 c0 00 d0 00 30 06 0003",
}

def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "codec")
    os.makedirs(out, exist_ok=True)
    for name, text in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes.fromhex(text.replace(" ", "")))

if __name__ == "__main__":
    main()
