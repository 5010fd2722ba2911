/* IR -> text: an `nft -f` script that replaces our table atomically, or
 * the IR as JSON. Pure: renders into memory; the caller writes it out. */
#ifndef BULKHEAD_RENDER_H
#define BULKHEAD_RENDER_H

#include "bulkhead/ir.h"

/* The script deletes and recreates table inet bulkhead in one
 * transaction; comment (may be NULL) goes into its header. */
void render_nft(const struct ir_ruleset *rs, const char *comment,
		struct strbuf *out);
void render_json(const struct ir_ruleset *rs, struct strbuf *out);

void render_elem(const struct ir_set *s, const struct ir_elem *e,
		 struct strbuf *out);
void render_match(const struct ir_match *m, struct strbuf *out);
void render_rule(const struct ir_rule *r, struct strbuf *out);
void render_set_type(const struct ir_set *s, struct strbuf *out);

#endif
