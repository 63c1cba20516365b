/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Corpus replay: runs a libFuzzer target's LLVMFuzzerTestOneInput over every file named on the
 * command line or found in a directory named there, with any compiler and no libFuzzer, so the
 * committed corpus (and every crash once added to it) runs in each fast test run. Each input gets
 * a heap buffer of exactly its size, as under libFuzzer, so a sanitizer build sees over-reads.
 *
 * Exit status: 0 if at least one input ran and none aborted; 1 if nothing was found to run (an
 * empty or misplaced corpus must not pass silently); a crash ends the process as it would the
 * fuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf;

	if (!f || fstat(fileno(f), &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	/* malloc(0) may return NULL; an empty input still deserves its own allocation. */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		fprintf(stderr, "replay: %s: short read\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
	free(buf);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	unsigned ran = 0, errors = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		struct dirent **names;
		int n;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			errors++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			errors += run_file(argv[i]) < 0;
			ran++;
			continue;
		}
		/* Sorted, so a failure names the same file on every run. */
		n = scandir(argv[i], &names, NULL, by_name);
		if (n < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			errors++;
			continue;
		}
		for (int j = 0; j < n; j++) {
			char path[4096];
			struct stat fst;

			snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
			if (stat(path, &fst) == 0 && S_ISREG(fst.st_mode)) {
				errors += run_file(path) < 0;
				ran++;
			}
			free(names[j]);
		}
		free(names);
	}
	printf("replay: %u inputs, %u unreadable\n", ran, errors);
	return ran > 0 && errors == 0 ? 0 : 1;
}
