/* SPDX-License-Identifier: MIT */
#pragma once
/* gc: retention policy evaluation, mark, sweep, reports. (being written) */
#include "storage/storage.h"
