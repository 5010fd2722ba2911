/* Shared declarations for the unit suites (Check). */
#ifndef BULKHEAD_TEST_UNIT_H
#define BULKHEAD_TEST_UNIT_H

#include <check.h>

#include "bulkhead/compile.h"

Suite *policy_suite(void);
Suite *inventory_suite(void);
Suite *compile_suite(void);
Suite *trace_suite(void);
Suite *ir_suite(void);
Suite *kernel_suite(void);
Suite *docker_suite(void);
Suite *flowlog_suite(void);
Suite *fqdn_suite(void);
Suite *revoke_suite(void);
Suite *sync_suite(void);
Suite *control_suite(void);
Suite *denials_suite(void);
Suite *allowed_suite(void);
Suite *metrics_suite(void);
Suite *flowsink_suite(void);
Suite *scope_suite(void);

/* Helpers: load a fixture policy / inventory or fail the test. */
struct policy *load_policy_fixture(const char *path);
struct inventory *load_inventory_fixture(const char *path);
char *read_text(const char *path, size_t *len);
/* Replaces the first from in *s with to (a test's small edit of a
 * recorded answer); fails the test when from is not there. */
void text_edit(char **s, const char *from, const char *to);
/* The fixture's ruleset (api.example.com resolving to 203.0.113.5). */
struct ir_ruleset *compile_fixture(const char *policy, const char *inventory);

#endif
