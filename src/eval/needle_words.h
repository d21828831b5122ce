#pragma once
// Keys for the needles: "adjective-noun" pairs, as RULER draws them from word lists, so that a
// key is a few ordinary tokens and never a number (values are numbers).
#include <string>

#include "eval/seeded_random.h"

namespace deltainfer::eval {

std::string random_needle_key(SeededRandom& random);
// A number of exactly `digits` digits (no leading zero).
std::string random_number(SeededRandom& random, int digits);
// `length` upper-case letters: a variable name for variable tracking.
std::string random_variable_name(SeededRandom& random, int length);

}  // namespace deltainfer::eval
