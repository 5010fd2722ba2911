/* User-input errors as {file, line, column, message} records, collected so
 * that every error in an input is reported, not only the first. */
#ifndef BULKHEAD_DIAG_H
#define BULKHEAD_DIAG_H

#include <stddef.h>
#include <stdio.h>

enum diag_level { DIAG_ERROR, DIAG_WARNING };

struct diag {
	enum diag_level level;
	char *file;
	unsigned line, col; /* 1-based; 0 when unknown */
	char *msg;
};

struct diags {
	struct diag *v;
	size_t n, cap;
	size_t nerrors;
};

void diags_add(struct diags *d, enum diag_level level, const char *file,
	       unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* FILE:LINE:COL: error: message, one a line. */
void diags_print(const struct diags *d, FILE *out);
void diags_free(struct diags *d);

#endif
