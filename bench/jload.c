/* The baseline: how long jansson alone takes to load a file as one tree
 * (json_load_file), in milliseconds, and its peak memory. */
#include <jansson.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

int main(int argc, char **argv)
{
	struct timespec a, b;
	struct rusage ru;
	json_error_t err;
	json_t *j;

	if (argc != 2)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &a);
	j = json_load_file(argv[1], 0, &err);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (!j) {
		fprintf(stderr, "jload: %s\n", err.text);
		return 1;
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("%.1f %ld\n",
	       (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6,
	       ru.ru_maxrss);
	json_decref(j);
	return 0;
}
