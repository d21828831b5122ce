#include "core/error.h"
// Anchors the core library; error types are header-only.
