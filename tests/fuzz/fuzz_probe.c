/* SPDX-License-Identifier: Apache-2.0 */
/* Configure-time check that clang can link a libFuzzer target (clang + libclang-rt-*-dev). */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)data;
	(void)size;
	return 0;
}
