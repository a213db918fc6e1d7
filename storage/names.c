/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "storage/storage.h"
