/* SPDX-License-Identifier: MIT */
/* Snapshots: taking them from a trace (one pass, any number of points),
 * their symbolic JSON files, filters, and the helpers the snapshot, stats,
 * diff and growth commands share. */
#define _GNU_SOURCE
#include "snapshot.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "leaktrace/format.h"

/* ---- shared helpers ---------------------------------------------------- */

int lt__fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("leaktrace-report: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 2;
}

int lt__parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {
	    {"", 1},
	    {"b", 1},
	    {"k", 1024.0},
	    {"kib", 1024.0},
	    {"kb", 1e3},
	    {"m", 1048576.0},
	    {"mib", 1048576.0},
	    {"mb", 1e6},
	    {"g", 1073741824.0},
	    {"gib", 1073741824.0},
	    {"gb", 1e9},
	    {"t", 1099511627776.0},
	    {"tib", 1099511627776.0},
	    {"tb", 1e12},
	};
	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcasecmp(end, units[i].suffix) != 0)
			continue;
		double bytes = v * units[i].mult;
		if (bytes >= 1.8e19)
			return -EINVAL;
		*out = (uint64_t)(bytes + 0.5);
		return 0;
	}
	return -EINVAL;
}

int lt__point_parse(const char *s, lt__point_t *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	if (!s || !*s) {
		snprintf(err, errlen,
		         "an empty snapshot point (want end, peak, a marker or seconds)");
		return -EINVAL;
	}
	if (strcmp(s, "end") == 0) {
		p->kind = LT__AT_END;
		return 0;
	}
	if (strcmp(s, "peak") == 0) {
		p->kind = LT__AT_PEAK;
		return 0;
	}
	bool explicit_marker = strncmp(s, "marker:", 7) == 0;
	if (!explicit_marker && ((*s >= '0' && *s <= '9') || *s == '.')) {
		char *end;
		errno = 0;
		double v = strtod(s, &end);
		double scale = 1e9;
		if (strcmp(end, "ms") == 0)
			scale = 1e6;
		else if (strcmp(end, "s") != 0 && *end)
			end = NULL;
		if (errno || !end || !isfinite(v) || v < 0 || v * scale > 1.8e19) {
			snprintf(err, errlen,
			         "'%s' is not a time (seconds: 1.5, 1.5s or 250ms; "
			         "use marker:%s for a marker of that name)",
			         s, s);
			return -EINVAL;
		}
		p->kind = LT__AT_TIME;
		p->ns = (uint64_t)(v * scale);
		return 0;
	}
	p->kind = LT__AT_MARKER;
	p->marker = explicit_marker ? s + 7 : s;
	p->marker_len = strlen(p->marker);
	p->occurrence = 1;
	/* "NAME#K": the K-th marker of that name. A name is kept whole when
	 * what follows its last '#' is not a positive number. */
	const char *hash = strrchr(p->marker, '#');
	if (hash && hash[1] >= '0' && hash[1] <= '9') {
		char *end;
		errno = 0;
		unsigned long long k = strtoull(hash + 1, &end, 10);
		if (!errno && !*end && k > 0) {
			p->occurrence = k;
			p->marker_len = (size_t)(hash - p->marker);
		}
	}
	if (!p->marker_len) {
		snprintf(err, errlen, "an empty marker name");
		return -EINVAL;
	}
	return 0;
}

bool lt__point_names(const lt__point_t *p, const char *name)
{
	return strlen(name) == p->marker_len && strncmp(name, p->marker, p->marker_len) == 0;
}

/* The name of the long option in arg ("--name" or "--name=value"), without
 * the dashes and the value: sets *len and returns where it starts. */
static const char *long_name(const char *arg, int *len)
{
	const char *name = arg + 2;
	const char *eq = strchr(name, '=');
	size_t n = eq ? (size_t)(eq - name) : strlen(name);
	*len = n > 64 ? 64 : (int)n;
	return name;
}

int lt__bad_option(int c, char *const argv[], const struct option *longopts, const char *cmd)
{
	char see[64];
	snprintf(see, sizeof see, "(see %s%s--help)", cmd ? cmd : "", cmd ? " " : "");
	/* getopt_long() has stepped past the element that failed except for an
	 * unknown short option inside a group ("-xq"): optopt tells those
	 * apart, being 0 only for a long option it could not match. */
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	bool is_long = strncmp(arg, "--", 2) == 0 && arg[2] != '\0';
	if (c == ':') {
		if (is_long) {
			int len;
			const char *name = long_name(arg, &len);
			return lt__fail("option --%.*s needs a value %s", len, name, see);
		}
		return lt__fail("option -%c needs a value %s", optopt, see);
	}
	if (optopt != 0 && !is_long)
		return lt__fail("unknown option -%c %s", isprint(optopt) ? optopt : '?', see);
	if (!is_long)
		return lt__fail("unknown option %s %s", arg, see);
	int len;
	const char *name = long_name(arg, &len);
	if (optopt != 0) /* a known option given a value it does not take */
		return lt__fail("option --%.*s takes no value %s", len, name, see);
	/* An abbreviation that fits several options is ambiguous, not unknown. */
	size_t fits = 0;
	for (const struct option *o = longopts; o->name; o++)
		if (strncmp(o->name, name, (size_t)len) == 0 &&
		    (o == longopts || o[-1].val != o->val))
			fits++;
	if (fits > 1)
		return lt__fail("ambiguous option --%.*s %s", len, name, see);
	return lt__fail("unknown option --%.*s %s", len, name, see);
}

/* The value of the top-level "schema" key of the JSON document at path,
 * for naming what it is; "" when it has none (or does not parse). Only on
 * the way to an error, so reading the whole document is fine. */
static void json_schema(const char *path, char *buf, size_t len)
{
	buf[0] = '\0';
	json_t *doc = json_load_file(path, 0, NULL);
	const char *schema = json_string_value(json_object_get(doc, "schema"));
	if (schema)
		snprintf(buf, len, "%s", schema);
	json_decref(doc);
}

#define LT__SNIFF_LEN 4096 /* bytes read to tell a trace from JSON */

int lt__input_check(const char *path, unsigned want)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return lt__fail("%s: %s", path, strerror(errno)), 0;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int err = errno;
		close(fd);
		return lt__fail("%s: %s", path, strerror(err)), 0;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return lt__fail("%s: %s", path, strerror(EISDIR)), 0;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return want & LT__INPUT_TRACE ? LT__INPUT_TRACE : LT__INPUT_SNAPSHOT;
	}
	if (st.st_size == 0) {
		close(fd);
		return lt__fail("%s: empty file (no trace header)", path), 0;
	}
	char head[LT__SNIFF_LEN + 1];
	ssize_t got;
	do
		got = read(fd, head, LT__SNIFF_LEN);
	while (got < 0 && errno == EINTR);
	int err = errno;
	close(fd);
	if (got < 0)
		return lt__fail("%s: %s", path, strerror(err)), 0;
	head[got] = '\0';
	size_t cmp = (size_t)got < LT_FILE_MAGIC_LEN ? (size_t)got : LT_FILE_MAGIC_LEN;
	if (got > 0 && memcmp(head, LT_FILE_MAGIC, cmp) == 0) {
		if (want & LT__INPUT_TRACE)
			return LT__INPUT_TRACE;
		return lt__fail("%s: a leaktrace trace, not a snapshot", path), 0;
	}
	/* A JSON document opens with '{' or '[' after any white space (and
	 * perhaps a UTF-8 byte order mark). */
	const char *p = head;
	if (strncmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	p += strspn(p, " \t\r\n");
	bool json = *p == '{' || *p == '[';
	if (json && (want & LT__INPUT_SNAPSHOT))
		return LT__INPUT_SNAPSHOT;
	if (json) {
		char schema[64];
		json_schema(path, schema, sizeof schema);
		if (strcmp(schema, LT__SNAPSHOT_SCHEMA) == 0)
			return lt__fail("%s: not a leaktrace trace but a snapshot (this needs the "
			                "trace file)",
			                path),
			       0;
		return lt__fail("%s: not a leaktrace trace but a JSON document%s%s%s (this needs "
		                "the trace file)",
		                path, schema[0] ? " of schema \"" : "", schema,
		                schema[0] ? "\"" : ""),
		       0;
	}
	if (want & LT__INPUT_SNAPSHOT)
		return lt__fail("%s: neither a leaktrace trace nor a snapshot (no trace magic, "
		                "not JSON)",
		                path),
		       0;
	return lt__fail("%s: not a leaktrace trace (bad file magic)", path), 0;
}

int lt__common_opt(lt__common_opts_t *o, int c, const char *arg)
{
	switch (c) {
	case 0x100:
		if (o->sym.nskip == LT__MAX_SKIP)
			return lt__fail("too many --skip-function patterns (at most %d)",
			                LT__MAX_SKIP);
		o->skip[o->sym.nskip++] = arg;
		o->sym.skip_functions = o->skip;
		return 0;
	case 0x101:
		o->sym.sysroot = arg;
		return 0;
	case 0x102:
		o->sym.debug_dir = arg;
		return 0;
	case 0x103:
		o->sym.show_hidden = true;
		return 0;
	case 0x104:
	case 0x105:
		if (o->filters.n == LT__MAX_FILTERS)
			return lt__fail("too many --include/--exclude patterns (at most %d)",
			                LT__MAX_FILTERS);
		o->filters.v[o->filters.n].include = c == 0x104;
		o->filters.v[o->filters.n].glob = arg;
		o->filters.n++;
		return 0;
	case 0x106:
		o->filters.all_frames = true;
		return 0;
	default:
		return 1;
	}
}

int lt__trace_open(lt__analysis_t *a, const char *path)
{
	memset(a, 0, sizeof *a);
	if (!lt__input_check(path, LT__INPUT_TRACE))
		return 2;
	int rc = lt__analysis_open(a, path, NULL, NULL);
	if (rc == 0)
		return 0;
	if (a->dec)
		fputs(lt__decoder_warnings(a->dec), stderr);
	lt__fail("%s", a->dec && lt__decoder_error(a->dec)[0] ? lt__decoder_error(a->dec)
	                                                      : strerror(-rc));
	lt__analysis_close(a);
	return 2;
}

bool lt__trace_incomplete(const lt__decoder_t *d, const char *path, uint64_t *at)
{
	bool cut = lt__decoder_truncated(d, at);
	/* A trace always has a block (the PROCESS record comes first) unless
	 * the program died before the writer's first flush. */
	if (!cut && lt__decoder_position(d) <= LT_FILE_HEADER_LEN) {
		cut = true;
		*at = lt__decoder_position(d);
	}
	if (cut)
		fprintf(stderr,
		        "leaktrace-report: %s: trace is incomplete: ends at byte %" PRIu64
		        " (the program was probably killed)\n",
		        path, *at);
	return cut;
}

int lt__trace_finish(lt__analysis_t *a, const char *path, int rc, bool *truncated)
{
	fputs(lt__decoder_warnings(a->dec), stderr);
	if (rc < 0)
		return lt__fail("%s", lt__decoder_error(a->dec)[0] ? lt__decoder_error(a->dec)
		                                                   : strerror(-rc));
	uint64_t at = 0;
	bool cut = lt__trace_incomplete(a->dec, path, &at);
	if (truncated)
		*truncated = cut;
	return 0;
}

/* ---- filters ----------------------------------------------------------- */

static bool frame_matches(const lt__snap_frame_t *fr, const char *glob)
{
	return (fr->module[0] && fnmatch(glob, fr->module, 0) == 0) ||
	       (fr->file && fnmatch(glob, fr->file, 0) == 0);
}

static bool filter_matches(const lt__filters_t *f, const lt__filter_t *flt,
                           const lt__snap_trace_t *t)
{
	size_t n = f->all_frames ? t->nframes : (t->nframes ? 1 : 0);
	for (size_t i = 0; i < n; i++)
		if (frame_matches(&t->frames[i], flt->glob))
			return true;
	return false;
}

bool lt__filters_keep(const lt__filters_t *f, const lt__snap_trace_t *t)
{
	if (!f)
		return true;
	bool any_include = false, included = false;
	for (size_t i = 0; i < f->n; i++) {
		bool m = filter_matches(f, &f->v[i], t);
		if (f->v[i].include) {
			any_include = true;
			included |= m;
		} else if (m) {
			return false;
		}
	}
	return !any_include || included;
}

/* ---- building a snapshot ----------------------------------------------- */

/* What a point captured while the trace was replayed: per recorded stack
 * (aggregate site), the live bytes and blocks. Symbolized at the end, with
 * one symbolizer for all points. */
struct capture {
	bool taken;
	uint32_t *site;
	uint64_t *bytes, *blocks;
	size_t n;
	double time_s;
	uint64_t allocations, frees, peak_bytes;
	uint64_t seen; /* markers of the point's name seen so far */
};

/* A trace under construction, found by its symbolic key. */
struct pending {
	char *key;
	size_t index;
	UT_hash_handle hh;
};

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* Appends s and a separator to the key buffer. */
static int key_put(char **buf, size_t *len, size_t *cap, const char *s, char sep)
{
	size_t l = s ? strlen(s) : 1;
	if (*len + l + 2 > *cap) {
		size_t ncap = (*len + l + 2) * 2;
		char *n = realloc(*buf, ncap);
		if (!n)
			return -ENOMEM;
		*buf = n;
		*cap = ncap;
	}
	memcpy(*buf + *len, s ? s : "\x01", l); /* \x01: unknown, unlike "" */
	*len += l;
	(*buf)[(*len)++] = sep;
	(*buf)[*len] = '\0';
	return 0;
}

int lt__snap_frames_key(const lt__snap_frame_t *frames, size_t n, char **key)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (size_t i = 0; i < n; i++) {
		char line[16];
		snprintf(line, sizeof line, "%u", frames[i].line);
		if (key_put(&buf, &len, &cap, frames[i].module, '\x1f') ||
		    key_put(&buf, &len, &cap, frames[i].function, '\x1f') ||
		    key_put(&buf, &len, &cap, frames[i].file, '\x1f') ||
		    key_put(&buf, &len, &cap, line, '\x1e')) {
			free(buf);
			return -ENOMEM;
		}
	}
	if (!buf && !(buf = strdup("")))
		return -ENOMEM;
	*key = buf;
	return 0;
}

static void frames_free(lt__snap_frame_t *frames, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(frames[i].module);
		free(frames[i].function);
		free(frames[i].file);
	}
	free(frames);
}

/* Adds size/count to the trace of frames (taking ownership of frames),
 * merging with an equal key. Returns 0 or -ENOMEM. */
static int snapshot_add(lt__snapshot_t *s, struct pending **index, lt__snap_frame_t *frames,
                        size_t n, uint64_t size, uint64_t count)
{
	char *key;
	if (lt__snap_frames_key(frames, n, &key)) {
		frames_free(frames, n);
		return -ENOMEM;
	}
	struct pending *p;
	HASH_FIND_STR(*index, key, p);
	if (p) {
		free(key);
		frames_free(frames, n);
		s->traces[p->index].size += size;
		s->traces[p->index].count += count;
	} else {
		if (s->ntraces == s->cap) {
			size_t ncap = s->cap ? s->cap * 2 : 64;
			lt__snap_trace_t *v = realloc(s->traces, ncap * sizeof *v);
			if (!v) {
				free(key);
				frames_free(frames, n);
				return -ENOMEM;
			}
			s->traces = v;
			s->cap = ncap;
		}
		p = malloc(sizeof *p);
		if (!p) {
			free(key);
			frames_free(frames, n);
			return -ENOMEM;
		}
		p->key = key;
		p->index = s->ntraces;
		HASH_ADD_KEYPTR(hh, *index, p->key, strlen(p->key), p);
		s->traces[s->ntraces++] = (lt__snap_trace_t){
		    .frames = frames, .nframes = n, .size = size, .count = count};
	}
	s->total_size += size;
	s->total_count += count;
	return 0;
}

/* Copies symbolizer frames into snapshot frames. Returns 0 or -ENOMEM. */
static int copy_frames(const lt__frame_t *const *src, size_t n, lt__snap_frame_t **out)
{
	lt__snap_frame_t *v = calloc(n ? n : 1, sizeof *v);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char label[512];
		v[i].module = strdup(src[i]->module ? base_name(src[i]->module) : "");
		v[i].function = strdup(lt__frame_label(src[i], label, sizeof label));
		v[i].file = xstrdup(src[i]->file);
		v[i].line = src[i]->line;
		if (!v[i].module || !v[i].function || (src[i]->file && !v[i].file)) {
			frames_free(v, i + 1);
			return -ENOMEM;
		}
	}
	*out = v;
	return 0;
}

static int cmp_trace(const void *a, const void *b)
{
	const lt__snap_trace_t *x = a, *y = b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	size_t n = x->nframes < y->nframes ? x->nframes : y->nframes;
	for (size_t i = 0; i < n; i++) {
		int c = strcmp(x->frames[i].function, y->frames[i].function);
		if (c)
			return c;
		if (x->frames[i].line != y->frames[i].line)
			return x->frames[i].line < y->frames[i].line ? -1 : 1;
	}
	return x->nframes < y->nframes ? -1 : x->nframes > y->nframes;
}

static void index_free(struct pending **index)
{
	struct pending *p, *tmp;
	HASH_ITER(hh, *index, p, tmp)
	{
		HASH_DEL(*index, p);
		free(p->key);
		free(p);
	}
}

static char *point_name(const lt__point_t *p)
{
	char buf[600];
	switch (p->kind) {
	case LT__AT_END:
		return strdup("end");
	case LT__AT_PEAK:
		return strdup("peak");
	case LT__AT_MARKER:
		if (p->occurrence == 1)
			snprintf(buf, sizeof buf, "marker %.*s", (int)p->marker_len, p->marker);
		else
			snprintf(buf, sizeof buf, "marker %.*s#%" PRIu64, (int)p->marker_len,
			         p->marker, p->occurrence);
		return strdup(buf);
	case LT__AT_TIME:
		snprintf(buf, sizeof buf, "time %gs", (double)p->ns / 1e9);
		return strdup(buf);
	}
	return strdup("?");
}

/* Turns a capture into a symbolic snapshot. Returns 0 or -ENOMEM. */
static int build_snapshot(lt__analysis_t *a, lt__sym_t *sym, const char *trace,
                          const lt__point_t *p, const struct capture *cap, bool truncated,
                          lt__snapshot_t **out)
{
	lt__snapshot_t *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	*out = s;
	const lt__process_t *proc = lt__replay_process(a->replay);
	s->source = strdup(trace);
	s->point = point_name(p);
	s->time_s = cap->time_s;
	s->exe = proc->known ? xstrdup(proc->exe) : NULL;
	s->pid = proc->known ? proc->pid : 0;
	s->allocations = cap->allocations;
	s->frees = cap->frees;
	s->peak_bytes = cap->peak_bytes;
	s->truncated = truncated;
	if (!s->source || !s->point)
		return -ENOMEM;
	lt__agg_t *agg = lt__replay_agg(a->replay);
	struct pending *index = NULL;
	int rc = 0;
	for (size_t i = 0; i < cap->n && rc == 0; i++) {
		const lt__site_t *site = agg->sites[cap->site[i]];
		const lt__frame_t **frames;
		size_t n;
		rc = lt__sym_stack(sym, site->modmap, site->frames, site->depth, site->pyframes,
		                   site->npyframes, &frames, &n);
		if (rc)
			break;
		lt__snap_frame_t *copy;
		rc = copy_frames(frames, n, &copy);
		free(frames);
		if (rc == 0)
			rc = snapshot_add(s, &index, copy, n, cap->bytes[i], cap->blocks[i]);
	}
	index_free(&index);
	if (rc == 0 && s->ntraces)
		qsort(s->traces, s->ntraces, sizeof *s->traces, cmp_trace);
	return rc;
}

/* Records every site's live bytes now (or at the peak). Returns 0 or
 * -ENOMEM. */
static int capture_now(lt__analysis_t *a, struct capture *c, bool at_peak)
{
	const lt__agg_t *agg = lt__replay_agg(a->replay);
	const lt__totals_t *t = lt__replay_totals(a->replay);
	size_t n = agg->nsites ? agg->nsites : 1;
	c->site = malloc(n * sizeof *c->site);
	c->bytes = malloc(n * sizeof *c->bytes);
	c->blocks = malloc(n * sizeof *c->blocks);
	if (!c->site || !c->bytes || !c->blocks)
		return -ENOMEM;
	for (uint32_t i = 0; i < agg->nsites; i++) {
		uint64_t bytes = agg->sites[i]->live_bytes, blocks = agg->sites[i]->live_blocks;
		if (at_peak)
			lt__agg_at_peak(agg, agg->sites[i], &bytes, &blocks);
		if (!blocks)
			continue;
		c->site[c->n] = i;
		c->bytes[c->n] = bytes;
		c->blocks[c->n] = blocks;
		c->n++;
	}
	c->taken = true;
	c->allocations = t->allocations;
	c->frees = t->frees;
	c->peak_bytes = t->peak_bytes;
	uint64_t ns;
	c->time_s = -1;
	if (at_peak) {
		c->time_s = lt__replay_peak_ns(a->replay, &ns) ? (double)ns / 1e9 : -1;
		c->allocations = c->frees = 0; /* not known at that moment */
	} else if (lt__replay_epoch_ns(a->replay, t->last_epoch, &ns)) {
		c->time_s = (double)ns / 1e9;
	}
	return 0;
}

static void capture_free(struct capture *c)
{
	free(c->site);
	free(c->bytes);
	free(c->blocks);
}

/* Names the markers of the trace for an error message (a second pass
 * would be needed to list them all: the first few seen are enough). */
struct marker_names {
	char text[256];
	size_t n;
};

static void note_marker(struct marker_names *m, const char *name)
{
	m->n++;
	size_t len = strlen(m->text);
	if (m->n > 8 || len + strlen(name) + 8 >= sizeof m->text) {
		if (!strstr(m->text, ", ..."))
			snprintf(m->text + len, sizeof m->text - len, ", ...");
		return;
	}
	snprintf(m->text + len, sizeof m->text - len, "%s%s", len ? ", " : "", name);
}

int lt__snapshot_take(const char *trace, const lt__point_t *points, size_t npoints,
                      const lt__sym_opts_t *sym_opts, lt__snapshot_t **out)
{
	lt__analysis_t a;
	if (lt__trace_open(&a, trace))
		return 2;
	struct capture *caps = calloc(npoints ? npoints : 1, sizeof *caps);
	struct marker_names names = {.text = ""};
	if (!caps) {
		lt__analysis_close(&a);
		return lt__fail("%s", strerror(ENOMEM));
	}
	lt__merged_t item;
	int rc;
	uint64_t cached_epoch = UINT64_MAX, cached_ns = 0;
	while ((rc = lt__merge_next(a.merge, &item)) == 1) {
		/* A time point is taken just before the first event past it. */
		if (item.is_event) {
			if (item.ev.epoch != cached_epoch) {
				cached_epoch = item.ev.epoch;
				if (!lt__replay_epoch_ns(a.replay, cached_epoch, &cached_ns))
					cached_ns = 0;
			}
			for (size_t i = 0; i < npoints && rc >= 0; i++) {
				if (points[i].kind != LT__AT_TIME || caps[i].taken ||
				    cached_ns <= points[i].ns)
					continue;
				rc = capture_now(&a, &caps[i], false);
				caps[i].time_s = (double)points[i].ns / 1e9;
			}
		}
		if (rc >= 0)
			rc = lt__replay_apply(a.replay, &item);
		if (rc < 0)
			break;
		if (item.is_event && item.ev.type == LT_REC_MARKER) {
			const char *name = item.ev.str ? item.ev.str : "";
			note_marker(&names, name);
			for (size_t i = 0; i < npoints && rc >= 0; i++)
				if (points[i].kind == LT__AT_MARKER && !caps[i].taken &&
				    lt__point_names(&points[i], name) &&
				    ++caps[i].seen == points[i].occurrence)
					rc = capture_now(&a, &caps[i], false);
			if (rc < 0)
				break;
		}
	}
	bool truncated = false;
	int status = lt__trace_finish(&a, trace, rc, &truncated);
	for (size_t i = 0; i < npoints && status == 0; i++) {
		if (caps[i].taken)
			continue;
		uint64_t duration = lt__replay_duration_ns(a.replay);
		if (points[i].kind == LT__AT_TIME && points[i].ns <= duration) {
			/* No event after that time: the state at the end is the
			 * state then. */
			if (capture_now(&a, &caps[i], false))
				status = lt__fail("%s", strerror(ENOMEM));
			caps[i].time_s = (double)points[i].ns / 1e9;
		} else if (points[i].kind == LT__AT_END || points[i].kind == LT__AT_PEAK) {
			if (capture_now(&a, &caps[i], points[i].kind == LT__AT_PEAK))
				status = lt__fail("%s", strerror(ENOMEM));
		} else if (points[i].kind == LT__AT_TIME) {
			status = lt__fail("%s: the trace ends at %.3f s, before %g s", trace,
			                  (double)duration / 1e9, (double)points[i].ns / 1e9);
		} else if (caps[i].seen) {
			status =
			    lt__fail("%s: marker '%.*s' occurs %" PRIu64 " time(s), not %" PRIu64,
			             trace, (int)points[i].marker_len, points[i].marker,
			             caps[i].seen, points[i].occurrence);
		} else {
			status = lt__fail("%s: no marker '%.*s' in the trace (markers: %s)", trace,
			                  (int)points[i].marker_len, points[i].marker,
			                  names.n ? names.text : "none");
		}
	}
	lt__sym_t *sym = NULL;
	if (status == 0 && lt__sym_new(&sym, lt__replay_modmaps(a.replay), sym_opts))
		status = lt__fail("%s", strerror(ENOMEM));
	for (size_t i = 0; i < npoints; i++)
		out[i] = NULL;
	for (size_t i = 0; i < npoints && status == 0; i++)
		if (build_snapshot(&a, sym, trace, &points[i], &caps[i], truncated, &out[i]))
			status = lt__fail("%s", strerror(ENOMEM));
	if (status)
		for (size_t i = 0; i < npoints; i++) {
			lt__snapshot_free(out[i]);
			out[i] = NULL;
		}
	for (size_t i = 0; i < npoints; i++)
		capture_free(&caps[i]);
	free(caps);
	lt__sym_free(sym);
	lt__analysis_close(&a);
	return status;
}

void lt__snapshot_free(lt__snapshot_t *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ntraces; i++)
		frames_free(s->traces[i].frames, s->traces[i].nframes);
	free(s->traces);
	free(s->source);
	free(s->point);
	free(s->exe);
	free(s);
}

/* ---- JSON -------------------------------------------------------------- */

json_t *lt__jint(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* Strings from a trace may be any bytes; JSON wants UTF-8. */
static json_t *jstr(const char *s)
{
	if (!s)
		return json_null();
	json_t *j = json_string(s);
	if (j)
		return j;
	char *copy = strdup(s);
	if (!copy)
		return json_null();
	for (char *c = copy; *c; c++)
		if (*c & 0x80)
			*c = '?';
	j = json_string(copy);
	free(copy);
	return j ? j : json_null();
}

json_t *lt__snap_frames_json(const lt__snap_frame_t *frames, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "function", jstr(frames[i].function));
		json_object_set_new(o, "file", jstr(frames[i].file));
		json_object_set_new(o, "line",
		                    frames[i].line ? lt__jint(frames[i].line) : json_null());
		json_object_set_new(o, "module", jstr(frames[i].module));
		json_array_append_new(arr, o);
	}
	return arr;
}

int lt__snapshot_write(FILE *out, const lt__snapshot_t *s)
{
	json_t *doc = json_object();
	if (!doc)
		return -ENOMEM;
	json_object_set_new(doc, "schema", json_string(LT__SNAPSHOT_SCHEMA));
	json_object_set_new(doc, "version", lt__jint(LT__SNAPSHOT_VERSION));
	json_object_set_new(doc, "source", jstr(s->source));
	json_object_set_new(doc, "point", jstr(s->point));
	json_object_set_new(doc, "time_s", s->time_s >= 0 ? json_real(s->time_s) : json_null());
	json_object_set_new(doc, "exe", jstr(s->exe));
	json_object_set_new(doc, "pid", lt__jint(s->pid));
	json_object_set_new(doc, "truncated", json_boolean(s->truncated));
	json_t *sum = json_object();
	json_object_set_new(sum, "size", lt__jint(s->total_size));
	json_object_set_new(sum, "count", lt__jint(s->total_count));
	json_object_set_new(sum, "peak_bytes", lt__jint(s->peak_bytes));
	json_object_set_new(sum, "allocations", lt__jint(s->allocations));
	json_object_set_new(sum, "frees", lt__jint(s->frees));
	json_object_set_new(doc, "summary", sum);
	json_t *traces = json_array();
	for (size_t i = 0; i < s->ntraces; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "size", lt__jint(s->traces[i].size));
		json_object_set_new(o, "count", lt__jint(s->traces[i].count));
		json_object_set_new(
		    o, "frames", lt__snap_frames_json(s->traces[i].frames, s->traces[i].nframes));
		json_array_append_new(traces, o);
	}
	json_object_set_new(doc, "traces", traces);
	int rc = json_dumpf(doc, out, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(doc);
	return rc == 0 && !ferror(out) ? 0 : -EIO;
}

/* Reads an unsigned integer member; false when missing or not one. */
static bool get_uint(json_t *o, const char *name, uint64_t *v)
{
	json_t *j = json_object_get(o, name);
	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return false;
	*v = (uint64_t)json_integer_value(j);
	return true;
}

static char *get_str(json_t *o, const char *name)
{
	json_t *j = json_object_get(o, name);
	return json_is_string(j) ? strdup(json_string_value(j)) : NULL;
}

/* Parses one frame object. Returns NULL on success or what is wrong. */
static const char *parse_frame(json_t *o, lt__snap_frame_t *f)
{
	if (!json_is_object(o))
		return "a frame is not an object";
	json_t *fn = json_object_get(o, "function"), *file = json_object_get(o, "file");
	json_t *line = json_object_get(o, "line"), *mod = json_object_get(o, "module");
	if (!json_is_string(fn))
		return "a frame has no \"function\" string";
	if (file && !json_is_string(file) && !json_is_null(file))
		return "a frame's \"file\" is not a string or null";
	if (line && !json_is_null(line) &&
	    (!json_is_integer(line) || json_integer_value(line) < 0 ||
	     json_integer_value(line) > UINT32_MAX))
		return "a frame's \"line\" is not a line number or null";
	if (mod && !json_is_string(mod) && !json_is_null(mod))
		return "a frame's \"module\" is not a string";
	f->function = strdup(json_string_value(fn));
	f->module = strdup(json_is_string(mod) ? json_string_value(mod) : "");
	f->file = json_is_string(file) ? strdup(json_string_value(file)) : NULL;
	f->line = json_is_integer(line) ? (unsigned)json_integer_value(line) : 0;
	if (!f->function || !f->module || (json_is_string(file) && !f->file))
		return "out of memory";
	return NULL;
}

/* Parses a snapshot document. Returns NULL or what is wrong with it. */
static const char *parse_snapshot(json_t *doc, lt__snapshot_t *s)
{
	if (!json_is_object(doc))
		return "not a JSON object";
	json_t *schema = json_object_get(doc, "schema");
	if (json_is_string(schema) && strcmp(json_string_value(schema), LT__SNAPSHOT_SCHEMA)) {
		/* Another leaktrace output (a report, a diff) given by mistake. */
		static char msg[160];
		snprintf(msg, sizeof msg, "not a leaktrace snapshot but a \"%.64s\" document",
		         json_string_value(schema));
		return msg;
	}
	if (!json_is_string(schema))
		return "not a leaktrace snapshot (no \"schema\": \"" LT__SNAPSHOT_SCHEMA "\")";
	uint64_t version;
	if (!get_uint(doc, "version", &version))
		return "no \"version\" number";
	if (version != LT__SNAPSHOT_VERSION) {
		static char msg[128];
		snprintf(msg, sizeof msg,
		         "snapshot version %" PRIu64 ", this leaktrace-report reads version %d",
		         version, LT__SNAPSHOT_VERSION);
		return msg;
	}
	s->point = get_str(doc, "point");
	s->exe = get_str(doc, "exe");
	json_t *t = json_object_get(doc, "time_s");
	s->time_s = json_is_number(t) ? json_number_value(t) : -1;
	get_uint(doc, "pid", &s->pid);
	s->truncated = json_is_true(json_object_get(doc, "truncated"));
	json_t *sum = json_object_get(doc, "summary");
	if (json_is_object(sum)) {
		get_uint(sum, "peak_bytes", &s->peak_bytes);
		get_uint(sum, "allocations", &s->allocations);
		get_uint(sum, "frees", &s->frees);
	}
	json_t *traces = json_object_get(doc, "traces");
	if (!json_is_array(traces))
		return "no \"traces\" array";
	size_t n = json_array_size(traces);
	s->traces = calloc(n ? n : 1, sizeof *s->traces);
	if (!s->traces)
		return "out of memory";
	s->cap = n ? n : 1;
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(traces, i);
		lt__snap_trace_t *tr = &s->traces[i];
		if (!json_is_object(o) || !get_uint(o, "size", &tr->size) ||
		    !get_uint(o, "count", &tr->count))
			return "a trace has no \"size\" and \"count\"";
		json_t *frames = json_object_get(o, "frames");
		if (!json_is_array(frames))
			return "a trace has no \"frames\" array";
		size_t nf = json_array_size(frames);
		tr->frames = calloc(nf ? nf : 1, sizeof *tr->frames);
		if (!tr->frames)
			return "out of memory";
		s->ntraces = i + 1;
		for (size_t k = 0; k < nf; k++) {
			tr->nframes = k + 1;
			const char *why = parse_frame(json_array_get(frames, k), &tr->frames[k]);
			if (why)
				return why;
		}
		if (s->total_size + tr->size < s->total_size)
			return "sizes overflow";
		s->total_size += tr->size;
		s->total_count += tr->count;
	}
	return NULL;
}

int lt__snapshot_load(const char *path, const lt__point_t *at, const lt__sym_opts_t *sym,
                      lt__snapshot_t **out)
{
	*out = NULL;
	int kind = lt__input_check(path, LT__INPUT_TRACE | LT__INPUT_SNAPSHOT);
	if (!kind)
		return 2;
	if (kind == LT__INPUT_TRACE) {
		lt__point_t end = {.kind = LT__AT_END};
		return lt__snapshot_take(path, at ? at : &end, 1, sym, out);
	}
	json_error_t jerr;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		if (jerr.line <= 0 || jerr.position == 0)
			return lt__fail("%s: %s", path, jerr.text);
		return lt__fail("%s: not a snapshot: invalid JSON: %s (line %d)", path, jerr.text,
		                jerr.line);
	}
	lt__snapshot_t *s = calloc(1, sizeof *s);
	const char *why = s ? parse_snapshot(doc, s) : "out of memory";
	json_decref(doc);
	if (!why && !(s->source = strdup(path)))
		why = "out of memory";
	if (why) {
		lt__snapshot_free(s);
		return lt__fail("%s: %s", path, why);
	}
	*out = s;
	return 0;
}
