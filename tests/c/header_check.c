#include "durox.h"
int durox_header_check_unused(void);
int durox_header_check_unused(void) { return DUROX_OK; }
