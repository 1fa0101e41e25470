/*
 * status.c - `gridagent status` and ag_status(): one JSON object put
 * together from parts.  Each part adds its own keys; the store's part
 * (store.c) knows only the tables of 0001-store.sql, and the sync side
 * adds device, outbox, sequence and chain keys from its own tables.  A new
 * part is one more row in the table below.
 */
#include <stddef.h>
#include <stdlib.h>

#include <jansson.h>

#include "attach.h"
#include "core/error.h"
#include "core/mem.h"
#include "pull.h"
#include "reference.h"
#include "rootkeys.h"
#include "store.h"
#include "sync.h"
#include "core/banned.h"

typedef int (*status_part_fn)(struct ag_store *st, json_t *into);

static const status_part_fn parts[] = {
	ag_store_status,
	ag_sync_status, /* sync.c: device, outbox, last seq, chain head */
	ag_attach_status, /* attach.c: attachments pending/partial/done */
	ag_pull_status, /* pull.c: tasks, review verdicts, pull cursor */
	ag_reference_status, /* reference.c: form versions held */
	ag_rootkeys_status, /* rootkeys.c: the key bundle serial held */
};

int
ag_status_build(struct ag_store *st, json_t **out)
{
	json_t *o = NULL;
	size_t i;
	int r;

	*out = NULL;
	if ((o = json_object()) == NULL)
		return GS_FAIL(GS_ENOMEM, "status: out of memory");
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if ((r = parts[i](st, o)) != GS_OK) {
			json_decref(o);
			return r;
		}
	}
	*out = o;
	return GS_OK;
}

int
ag_status(struct ag_store *st, char **json_out)
{
	json_t *o = NULL;
	char *s, *copy;
	int r;

	*json_out = NULL;
	if ((r = ag_status_build(st, &o)) != GS_OK)
		return r;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		return GS_FAIL(GS_ENOMEM, "status: out of memory");
	/* Hand out our allocator's memory: the header says ag_free. */
	copy = gs_strdup(s);
	free(s);
	if (copy == NULL)
		return GS_FAIL(GS_ENOMEM, "status: out of memory");
	*json_out = copy;
	return GS_OK;
}
