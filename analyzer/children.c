/* SPDX-License-Identifier: MIT */
/* Finds the traces of a process's forked children and exec'd images in
 * the same directory as its trace, by reading each candidate's PROCESS
 * record (the first record of a trace). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "decode.h"
#include "leaktrace/format.h"
#include "report.h"

#define LT__MAX_DIR_ENTRIES 100000 /* a directory this big is not searched further */

/* Reads the PROCESS record of the trace at path. Returns true when it has
 * one. exe is malloc'ed. */
static bool read_process(const char *path, uint64_t *pid, uint64_t *ppid,
			 uint64_t *start_ns, char **exe)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	char magic[LT_FILE_MAGIC_LEN];
	if (fread(magic, 1, sizeof magic, f) != sizeof magic ||
	    memcmp(magic, LT_FILE_MAGIC, sizeof magic) != 0) {
		fclose(f);
		return false;
	}
	rewind(f);
	lt__decoder_t *d;
	lt__decode_opts_t o = {.follow_parent = false};
	bool ok = false;
	if (lt__decoder_open_stream(&d, f, path, NULL, &o) == 0) {
		lt__record_t r;
		if (lt__decoder_next(d, &r) == 1 && r.type == LT_REC_PROCESS) {
			*pid = r.u.process.pid;
			*ppid = r.u.process.ppid;
			*start_ns = r.u.process.start_unix_ns;
			*exe = strndup(r.u.process.exe.ptr ? r.u.process.exe.ptr : "",
				       r.u.process.exe.len);
			ok = *exe != NULL;
		}
	}
	lt__decoder_close(d);
	return ok;
}

int lt__children_find(const char *trace_path, uint64_t pid, uint64_t start_ns,
		      lt__child_trace_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	const char *slash = strrchr(trace_path, '/');
	/* dir is the prefix of the paths shown: "" for the current one. */
	char *dir = slash ? strndup(trace_path, (size_t)(slash - trace_path) + 1) : strdup("");
	if (!dir)
		return -ENOMEM;
	DIR *dp = opendir(dir[0] ? dir : ".");
	if (!dp) {
		free(dir);
		return 0;
	}
	struct stat self;
	bool have_self = stat(trace_path, &self) == 0;
	size_t cap = 0, seen = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(dp)) && seen++ < LT__MAX_DIR_ENTRIES) {
		if (de->d_name[0] == '.')
			continue;
		char *path;
		if (asprintf(&path, "%s%s", dir, de->d_name) < 0) {
			rc = -ENOMEM;
			break;
		}
		struct stat st;
		uint64_t cpid, cppid, cstart;
		char *exe = NULL;
		bool usable = stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
			      !(have_self && st.st_ino == self.st_ino &&
				st.st_dev == self.st_dev);
		if (!usable || !read_process(path, &cpid, &cppid, &cstart, &exe) ||
		    !(cppid == pid || (cpid == pid && cstart > start_ns))) {
			free(exe);
			free(path);
			continue;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 4;
			lt__child_trace_t *v = realloc(*out, cap * sizeof *v);
			if (!v) {
				free(exe);
				free(path);
				rc = -ENOMEM;
				break;
			}
			*out = v;
		}
		(*out)[*n].path = path;
		(*out)[*n].pid = cpid;
		(*out)[*n].exec = cpid == pid;
		(*out)[*n].exe = exe;
		(*n)++;
	}
	closedir(dp);
	free(dir);
	return rc;
}

void lt__children_free(lt__child_trace_t *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].path);
		free(c[i].exe);
	}
	free(c);
}
