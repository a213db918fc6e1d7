/* SPDX-License-Identifier: MIT */
#pragma once
/* fusefs: read-only FUSE view of a store. (being written) */
#include "storage/storage.h"
