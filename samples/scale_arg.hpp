// The --scale FACTOR flag of the timing samples: FACTOR (>= 0) multiplies every sleep, so that
// their tests run them in milliseconds.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace samples {

/// The factor of `--scale FACTOR` or `--scale=FACTOR`, 1 without the flag; nullopt for any
/// other argument or a factor that is not a number >= 0.
inline std::optional<double> parse_scale(int argc, char** argv) {
    double scale = 1.0;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string text;
        if (arg == "--scale" && i + 1 < argc)
            text = argv[++i];
        else if (arg.starts_with("--scale="))
            text = arg.substr(8);
        else
            return std::nullopt;
        char* end = nullptr;
        scale = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !(scale >= 0))
            return std::nullopt;
    }
    return scale;
}

} // namespace samples
