#ifndef CWIRECAPNUMA_SHIM_H
#define CWIRECAPNUMA_SHIM_H
#include <numa.h>
#endif
