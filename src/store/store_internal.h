/* Shared by the reject log's writer (store.c) and reader (store_read.c). */
#ifndef ANOMALYD_STORE_INTERNAL_H
#define ANOMALYD_STORE_INTERNAL_H

#include <stddef.h>

/* The refusal of a log whose PRAGMA user_version is newer than this build
 * knows: one sentence, so the daemon and the report say the same. Returns
 * AD_STORE_ERROR. */
int ad_store_newer_schema_error(const char *db_path, long long version, char *err, size_t errlen);

#endif
