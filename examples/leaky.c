/* SPDX-License-Identifier: MIT */
/* The bundled example: a small "server" with the leaks people hunt — a
 * cache appended to forever, a request context that captures a buffer and
 * is never released, and a bounded cache that is NOT a leak. `scripts/demo`
 * traces it and prints what leaktrace finds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leaktrace.h"

struct entry {
	struct entry *next;
	char key[32];
	char *value;
};

static struct entry *cache; /* grows forever: the classic leak */

static void cache_put(const char *key, size_t value_len)
{
	struct entry *e = calloc(1, sizeof *e);
	snprintf(e->key, sizeof e->key, "%s", key);
	e->value = malloc(value_len);
	memset(e->value, 'v', value_len);
	e->next = cache;
	cache = e;
}

struct request {
	char *body;
	size_t len;
};

/* Forgets to free the request it builds when the handler fails. */
static int handle_request(int id)
{
	struct request *r = malloc(sizeof *r);
	r->len = 4096;
	r->body = malloc(r->len);
	memset(r->body, 0, r->len);
	if (id % 10 == 0)
		return -1; /* leaks r and r->body */
	free(r->body);
	free(r);
	return 0;
}

#define RING 16
static char *recent[RING]; /* bounded: old entries are freed */

static void remember(int id)
{
	free(recent[id % RING]);
	recent[id % RING] = malloc(256);
}

int main(void)
{
	char key[32];
	int failed = 0;
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "user-%d", i);
		cache_put(key, 100);
		failed += handle_request(i) != 0;
		remember(i);
		if (i == 499)
			leaktrace_snapshot("halfway");
	}
	printf("served 1000 requests, %d failed\n", failed);
	for (int i = 0; i < RING; i++)
		free(recent[i]);
	return 0;
}
