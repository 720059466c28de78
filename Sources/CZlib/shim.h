// zlib, for the compressed plugin source an output records (Debian: zlib1g-dev).
#include <zlib.h>
