#include "eval/needle_words.h"

#include <array>
#include <string_view>

namespace deltainfer::eval {
namespace {

constexpr std::array<std::string_view, 64> kAdjectives = {
    "ancient",  "bitter",  "brave",   "bright",  "broken",  "calm",    "clever",  "cold",
    "crimson",  "curious", "damp",    "dark",    "distant", "dusty",   "eager",   "early",
    "empty",    "fancy",   "fierce",  "fragile", "gentle",  "giant",   "golden",  "grumpy",
    "hidden",   "hollow",  "humble",  "icy",     "idle",    "jolly",   "kind",    "lazy",
    "little",   "lonely",  "loud",    "lucky",   "marble",  "mighty",  "misty",   "modern",
    "narrow",   "noisy",   "odd",     "pale",    "patient", "polite",  "proud",   "quiet",
    "rapid",    "rusty",   "scarlet", "shiny",   "silent",  "silver",  "sleepy",  "smooth",
    "steady",   "sturdy",  "swift",   "tender",  "tiny",    "velvet",  "wild",    "wooden"};

constexpr std::array<std::string_view, 64> kNouns = {
    "anchor",  "apple",    "badger",  "basket",  "beacon",  "bicycle", "blanket", "bottle",
    "bridge",  "bucket",   "candle",  "canyon",  "castle",  "cattle",  "cellar",  "chimney",
    "compass", "cottage",  "crayon",  "dolphin", "drum",    "engine",  "falcon",  "feather",
    "fiddle",  "garden",   "glacier", "hammer",  "harbor",  "helmet",  "island",  "jacket",
    "kettle",  "ladder",   "lantern", "meadow",  "mirror",  "mitten",  "needle",  "orchard",
    "otter",   "paddle",   "pebble",  "pencil",  "pillow",  "pumpkin", "quilt",   "rabbit",
    "ribbon",  "saddle",   "shovel",  "spider",  "squirrel", "teapot", "thimble", "tiger",
    "trumpet", "tunnel",   "umbrella", "violin", "wagon",   "walnut",  "whistle", "window"};

}  // namespace

std::string random_needle_key(SeededRandom& random) {
  std::string key(kAdjectives[random.below(kAdjectives.size())]);
  key += '-';
  key += kNouns[random.below(kNouns.size())];
  return key;
}

std::string random_number(SeededRandom& random, int digits) {
  std::string number(1, static_cast<char>('1' + random.below(9)));
  for (int i = 1; i < digits; ++i) number.push_back(static_cast<char>('0' + random.below(10)));
  return number;
}

std::string random_variable_name(SeededRandom& random, int length) {
  std::string name;
  for (int i = 0; i < length; ++i) name.push_back(static_cast<char>('A' + random.below(26)));
  return name;
}

}  // namespace deltainfer::eval
