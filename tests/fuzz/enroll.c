/*
 * enroll.c - fuzz harness: an enrollment code as typed or scanned by a
 * worker (text, NUL-terminated here), decoded and re-encoded: a code that
 * decodes must encode back to a code that decodes to the same fields.
 */
#include "fuzz.h"

#include "core/buf.h"
#include "core/error.h"
#include "enroll.h"
#include "core/banned.h"

int
FUZZ_ENTRY(enroll)(const uint8_t *data, size_t size)
{
	struct gs_enroll_code c, c2;
	struct gs_buf out;
	char *text;

	if ((text = malloc(size + 1)) == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if (gs_enroll_code_decode(&c, text) == GS_OK) {
		gs_buf_init(&out, 4096);
		if (gs_enroll_code_encode(&out, &c) != GS_OK ||
		    gs_buf_append(&out, "", 1) != GS_OK ||
		    gs_enroll_code_decode(&c2, (const char *)out.data) != GS_OK ||
		    memcmp(&c, &c2, sizeof(c)) != 0)
			abort(); /* decode and encode disagree */
		gs_enroll_code_wipe(&c2);
		gs_buf_release(&out);
	}
	gs_enroll_code_wipe(&c);
	free(text);
	return 0;
}
