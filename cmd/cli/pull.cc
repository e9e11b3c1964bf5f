// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/pull.h"
