#include "broker/codec/wire.h"

#include "broker/codec/utf8.h"

namespace meshmq::codec::detail {

std::optional<DecodeError> read_utf8(Reader& reader, std::string_view& out) {
  if (!reader.prefixed(out)) return DecodeError::kMalformedPacket;
  // MQTT-1.5.3-1/-2: ill-formed UTF-8 or U+0000 closes the connection.
  if (!valid_mqtt_utf8(out)) return DecodeError::kInvalidUtf8;
  return std::nullopt;
}

}  // namespace meshmq::codec::detail
