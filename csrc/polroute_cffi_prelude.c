#include "polroute.h"
