/* Collects and prints user-input diagnostics. Never exits. */
#include <stdarg.h>
#include <stdlib.h>

#include "bulkhead/diag.h"
#include "bulkhead/util.h"

void diags_add(struct diags *d, enum diag_level level, const char *file,
	       unsigned line, unsigned col, const char *fmt, ...)
{
	struct strbuf b = {0};
	struct diag *x;
	va_list ap;
	char tmp[1024];

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	sb_puts(&b, tmp);
	x = PUSH(d->v, d->n, d->cap);
	x->level = level;
	x->file = xstrdup(file ? file : "-");
	x->line = line;
	x->col = col;
	x->msg = b.s;
	if (level == DIAG_ERROR)
		d->nerrors++;
}

void diags_print(const struct diags *d, FILE *out)
{
	const char *lv;
	size_t i;

	for (i = 0; i < d->n; i++) {
		const struct diag *x = &d->v[i];

		lv = x->level == DIAG_ERROR ? "error" : "warning";
		if (x->line)
			fprintf(out, "%s:%u:%u: %s: %s\n", x->file, x->line,
				x->col, lv, x->msg);
		else
			fprintf(out, "%s: %s: %s\n", x->file, lv, x->msg);
	}
}

void diags_free(struct diags *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	d->v = NULL;
	d->n = d->cap = d->nerrors = 0;
}
