#pragma once

#include <string_view>

namespace meshmq::codec {

// Well-formed UTF-8 per RFC 3629 (no surrogates, no overlongs, at most U+10FFFF) and no U+0000, as
// MQTT 3.1.1 section 1.5.3 requires of every string field.
bool valid_mqtt_utf8(std::string_view s);

}  // namespace meshmq::codec
