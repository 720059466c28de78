// Everything lives in include/CKernels.h as static inline functions; this file only
// gives SwiftPM a C target to build.
#include "CKernels.h"
