// SPDX-License-Identifier: GPL-2.0
/*
 * pm-inspect: read a KHO handover and what became of it from debugfs.
 *
 * Sources, under the debugfs root:
 *   kho/{in,out}/fdt              KHO's root FDT (libfdt): the subtrees
 *   kho/{in,out}/sub_fdts/NAME    each subtree's blob
 *   persist_alloc/received/       (in) the extent array as received and the
 *                                 verdict on each block and extent
 *   persist_alloc/allocations     every granule of this kernel and its state
 *   liveupdate/sessions           LUO's sessions and their files
 * Every length is checked against what was read; nothing read is trusted
 * to be of the version this inspector knows until its name says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handover.h"

/* Upper bound of a file read from debugfs: 64 MiB (2.8 M extents). */
#define READ_MAX	(64u << 20)

static void warn(struct handover *h, const char *fmt, ...)
	__printf(2, 3);

static void warn(struct handover *h, const char *fmt, ...)
{
	va_list ap;

	if (h->nr_warn == ARRAY_SIZE(h->warn))
		return;
	va_start(ap, fmt);
	vsnprintf(h->warn[h->nr_warn++], sizeof(h->warn[0]), fmt, ap);
	va_end(ap);
}

/* The whole of a file, NUL terminated; NULL and errno set if unreadable. */
static unsigned char *read_file(const char *path, size_t *len)
{
	size_t cap = 4096, n = 0;
	unsigned char *buf = NULL, *nb;
	ssize_t r;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	for (;;) {
		if (!buf || n + 1 == cap) {
			if (buf)
				cap *= 2;
			nb = cap > READ_MAX ? NULL : realloc(buf, cap);
			if (!nb) {
				err = cap > READ_MAX ? EFBIG : ENOMEM;
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = errno;
			goto fail;
		}
		if (!r)
			break;
		n += r;
	}
	close(fd);
	buf[n] = 0;
	*len = n;
	return buf;
fail:
	free(buf);
	close(fd);
	errno = err;
	return NULL;
}

static unsigned char *read_at(const struct handover *h, size_t *len, const char *fmt, ...)
	__printf(3, 4);

static unsigned char *read_at(const struct handover *h, size_t *len, const char *fmt, ...)
{
	char rel[256], path[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", h->dir, rel);
	return read_file(path, len);
}

__u64 extent_bytes(__u32 order)
{
	return order == 0 || order == 9 || order == 18 ? 4096ull << order : 0;
}

const char *size_str(unsigned int order)
{
	switch (order) {
	case 0:
		return "4K";
	case 9:
		return "2M";
	case 18:
		return "1G";
	}
	return "?";
}

static __u64 get_u64(const void *p)
{
	__u64 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* A fixed-size NUL-padded string field as a C string, or NULL if unterminated. */
static const char *field_str(const char *f, size_t size)
{
	return memchr(f, 0, size) ? f : NULL;
}

static bool fdt_ok(const void *fdt, size_t len)
{
	return len >= sizeof(struct fdt_header) && !fdt_check_header(fdt) &&
	       fdt_totalsize(fdt) <= len;
}

static int read_root(struct handover *h)
{
	const char *side = h->out ? "out" : "in";
	unsigned char *fdt;
	const char *compat;
	size_t len;
	int node, plen, tries;

	fdt = read_at(h, &len, "kho/%s/fdt", side);
	/*
	 * The outgoing FDT changes in place while subtrees come and go, and
	 * debugfs reads it without KHO's lock: a torn read is read again.
	 */
	for (tries = 0; fdt && h->out && tries < 3 && !fdt_ok(fdt, len); tries++) {
		free(fdt);
		usleep(10000);
		fdt = read_at(h, &len, "kho/%s/fdt", side);
	}
	if (!fdt) {
		fprintf(stderr, "pm-inspect: %s/kho/%s/fdt: %s%s\n", h->dir, side, strerror(errno),
			h->out ? "" : " (not booted by a kexec with KHO?)");
		return -1;
	}
	if (!fdt_ok(fdt, len)) {
		fprintf(stderr, "pm-inspect: kho/%s/fdt is not a valid FDT\n", side);
		free(fdt);
		return -1;
	}
	compat = fdt_getprop(fdt, 0, "compatible", &plen);
	if (!compat || plen < 1 || compat[plen - 1]) {
		compat = "";
		plen = 1;
	}
	snprintf(h->kho_compatible, sizeof(h->kho_compatible), "%s", compat);
	if (strcmp(compat, KHO_COMPATIBLE)) {
		h->kho_refused = true;
		free(fdt);
		return 0;
	}
	fdt_for_each_subnode(node, fdt, 0) {
		const void *pd = fdt_getprop(fdt, node, KHO_PROP_DATA, &plen);
		const void *ps;
		const char *name;
		struct subtree *s, *ns;
		int slen;

		ps = fdt_getprop(fdt, node, KHO_PROP_SIZE, &slen);
		if (!pd || plen != 8 || !ps || slen != 8)
			continue;
		name = fdt_get_name(fdt, node, NULL);
		/* The name becomes a path under sub_fdts/. */
		if (!name || !*name || strchr(name, '/') || name[0] == '.') {
			warn(h, "KHO subtree with an unusable name skipped");
			continue;
		}
		ns = realloc(h->sub, (h->nr_sub + 1) * sizeof(*ns));
		if (!ns)
			break;
		h->sub = ns;
		s = &h->sub[h->nr_sub++];
		memset(s, 0, sizeof(*s));
		snprintf(s->name, sizeof(s->name), "%s", name);
		s->phys = get_u64(pd);
		s->size = get_u64(ps);
		s->data = read_at(h, &s->len, "kho/%s/sub_fdts/%s", side, s->name);
		if (!s->data)
			snprintf(s->decoded, sizeof(s->decoded), "blob not readable: %s",
				 strerror(errno));
		else
			snprintf(s->decoded, sizeof(s->decoded), "not decoded by this inspector");
	}
	free(fdt);
	return 0;
}

static struct subtree *subtree(struct handover *h, const char *name)
{
	unsigned long i;

	for (i = 0; i < h->nr_sub; i++)
		if (!strcmp(h->sub[i].name, name))
			return h->sub[i].data ? &h->sub[i] : NULL;
	return NULL;
}

static void refuse(struct subtree *s, const char *field, const char *want)
{
	s->refused = true;
	if (field)
		snprintf(s->decoded, sizeof(s->decoded),
			 "refused: version \"%.40s\", this inspector knows %s", field, want);
	else
		snprintf(s->decoded, sizeof(s->decoded),
			 "refused: no version string, this inspector knows %s", want);
}

/*
 * Whether blob @s holds at least a head of @head bytes that starts with a
 * NUL-terminated version string of @size bytes equal to @want; refused by
 * that name if not.
 */
static bool known_version(struct subtree *s, size_t head, size_t size, const char *want)
{
	const char *v = s->len >= head ? field_str((const char *)s->data, size) : NULL;

	if (v && !strcmp(v, want))
		return true;
	refuse(s, v, want);
	return false;
}

static void decode_persist_alloc(struct handover *h)
{
	struct subtree *s = subtree(h, PA_NAME), *r = subtree(h, PA_RANGES_NAME);
	const struct pa_ser *ser;
	__u64 i, room;

	if (r) {
		if (r->len < 16 || get_u64(r->data) != PA_RANGES_MAGIC) {
			r->refused = true;
			snprintf(r->decoded, sizeof(r->decoded),
				 "refused: magic %#llx is not %#llx",
				 r->len >= 8 ? get_u64(r->data) : 0, PA_RANGES_MAGIC);
		} else {
			__u64 nr = get_u64(r->data + 8);

			room = (r->len - 16) / 8;
			snprintf(r->decoded, sizeof(r->decoded), "%llu block ranges%s", nr,
				 nr > room ? " (more than the blob holds)" : "");
		}
	}
	if (!s)
		return;
	ser = (const void *)s->data;
	if (!known_version(s, sizeof(*ser), sizeof(ser->compatible), PA_COMPATIBLE))
		return;
	h->pa_decoded = true;
	h->pa_nr_blocks = ser->nr_blocks;
	h->pa_nr_extents = ser->nr_extents;
	room = (s->len - sizeof(*ser)) / sizeof(struct pa_block_ser);
	h->nr_blocks = ser->nr_blocks < room ? ser->nr_blocks : room;
	if (h->nr_blocks < ser->nr_blocks)
		warn(h, "persist-alloc counts %llu blocks, its blob holds %lu",
		     ser->nr_blocks, h->nr_blocks);
	h->blocks = calloc(h->nr_blocks ?: 1, sizeof(*h->blocks));
	if (!h->blocks) {
		h->nr_blocks = 0;
		return;
	}
	for (i = 0; i < h->nr_blocks; i++)
		memcpy(&h->blocks[i].ser, s->data + sizeof(*ser) + i * sizeof(struct pa_block_ser),
		       sizeof(struct pa_block_ser));
	snprintf(s->decoded, sizeof(s->decoded), "%s: %llu blocks, %llu extents",
		 PA_COMPATIBLE, ser->nr_blocks, ser->nr_extents);
}

static void decode_luo(struct handover *h)
{
	struct subtree *s = subtree(h, LUO_NAME);
	const struct luo_ser_head *ser;

	if (!s)
		return;
	ser = (const void *)s->data;
	if (!known_version(s, sizeof(*ser), sizeof(ser->compatible), LUO_COMPATIBLE))
		return;
	h->luo_decoded = true;
	h->liveupdate_num = ser->liveupdate_num;
	snprintf(s->decoded, sizeof(s->decoded), "%s: live update %llu",
		 LUO_COMPATIBLE, ser->liveupdate_num);
}

/* "block <i> <verdict>" / "extent <i> <verdict>" lines of received/verdicts. */
static void read_verdicts(struct handover *h)
{
	char *text, *line, *save = NULL;
	unsigned long i;
	size_t len;
	int off;

	if (h->verdicts_tried)
		return;
	h->verdicts_tried = true;
	text = (char *)read_at(h, &len, "persist_alloc/received/verdicts");
	if (!text) {
		warn(h, "no persist_alloc/received/verdicts (%s): verdicts unknown",
		     strerror(errno));
		return;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char kind[8];

		off = -1;
		if (sscanf(line, "%7s %lu %n", kind, &i, &off) != 2 || off < 0)
			continue;
		if (!strcmp(kind, "block") && i < h->nr_blocks)
			snprintf(h->blocks[i].verdict, sizeof(h->blocks[i].verdict), "%s",
				 line + off);
		else if (!strcmp(kind, "extent") && i < h->nr_ext)
			snprintf(h->ext[i].verdict, sizeof(h->ext[i].verdict), "%s", line + off);
	}
	free(text);
}

struct alloc {
	__u64 phys, owner;
	unsigned int order;
	char state[16];
};

static int alloc_cmp(const void *x, const void *y)
{
	const struct alloc *a = x, *b = y;

	return a->phys < b->phys ? -1 : a->phys > b->phys;
}

/* persist_alloc/allocations: "<phys> <order> <node> <attrs> <owner> <state>". */
static struct alloc *read_allocations(struct handover *h, unsigned long *nr)
{
	char *text, *line, *save = NULL;
	struct alloc *a = NULL, *na;
	unsigned long cap = 0;
	size_t len;

	*nr = 0;
	text = (char *)read_at(h, &len, "persist_alloc/allocations");
	if (!text) {
		warn(h, "no persist_alloc/allocations (%s): states unknown", strerror(errno));
		return NULL;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct alloc x;
		char attrs[64];
		int node;

		if (sscanf(line, "%llx %u %d %63s %llu %15s", &x.phys, &x.order,
			   &node, attrs, &x.owner, x.state) != 6)
			continue;
		if (*nr == cap) {
			cap = cap ? cap * 2 : 256;
			na = realloc(a, cap * sizeof(*a));
			if (!na)
				break;
			a = na;
		}
		a[(*nr)++] = x;
	}
	free(text);
	if (a)
		qsort(a, *nr, sizeof(*a), alloc_cmp);
	return a;
}

/* @a sorted by alloc_cmp(). */
static const struct alloc *find_alloc(const struct alloc *a, unsigned long nr, __u64 phys)
{
	struct alloc key = { .phys = phys };

	return a ? bsearch(&key, a, nr, sizeof(*a), alloc_cmp) : NULL;
}

/*
 * Granules of a run the kernel checks as a whole and then adopts granule
 * by granule (persist_check_extent()); 1 for a failed page or a run it
 * refuses whole.
 */
static __u64 run_granules(const struct pa_extent_ser *e)
{
	__u64 bytes = extent_bytes(e->order);

	if (!bytes || !e->nr || (e->flags & ~(__u16)(PA_SER_NO_DIRECT_MAP | PA_SER_HVO)) ||
	    ((e->flags & PA_SER_HVO) && !e->order) || (e->phys & (bytes - 1)) ||
	    (e->phys & ((1ull << 30) - 1)) + e->nr * bytes > (1ull << 30))
		return 1;
	return e->nr;
}

/*
 * Replace each received run by its granules. A run refused from one of
 * its granules on ("<verdict> from granule <k>") had its first k granules
 * adopted; the others share its verdict.
 */
static void split_runs(struct handover *h)
{
	unsigned long i, n = 0, at;
	struct extent *g;
	char *from;
	__u64 k;

	for (i = 0; i < h->nr_ext; i++)
		n += run_granules(&h->ext[i].ser);
	g = calloc(n ?: 1, sizeof(*g));
	if (!g) {
		warn(h, "no memory for %lu granules: runs shown whole", n);
		return;
	}
	for (i = 0, n = 0; i < h->nr_ext; i++) {
		at = 0;
		from = strstr(h->ext[i].verdict, " from granule ");
		if (from) {
			at = strtoul(from + strlen(" from granule "), NULL, 10);
			*from = 0;
		}
		for (k = 0; k < run_granules(&h->ext[i].ser); k++, n++) {
			g[n] = h->ext[i];
			g[n].ser.phys += k * extent_bytes(h->ext[i].ser.order);
			g[n].ser.nr = 1;
			g[n].run = i;
			if (k < at)
				snprintf(g[n].verdict, sizeof(g[n].verdict), "adopted");
		}
	}
	free(h->ext);
	h->ext = g;
	h->nr_ext = n;
}

/* in: the received extents and what became of each. */
static void read_received(struct handover *h, const struct alloc *a, unsigned long nr_a)
{
	unsigned char *raw;
	unsigned long i;
	size_t len;

	raw = read_at(h, &len, "persist_alloc/received/extents");
	if (!raw) {
		if (h->pa_nr_extents)
			warn(h, "no persist_alloc/received/extents (%s): extents unknown",
			     strerror(errno));
		return;
	}
	h->nr_ext = len / sizeof(struct pa_extent_ser);
	h->ext = calloc(h->nr_ext ?: 1, sizeof(*h->ext));
	if (!h->ext) {
		h->nr_ext = 0;
		free(raw);
		return;
	}
	for (i = 0; i < h->nr_ext; i++)
		memcpy(&h->ext[i].ser, raw + i * sizeof(struct pa_extent_ser),
		       sizeof(struct pa_extent_ser));
	free(raw);
	h->nr_runs = h->nr_ext;
	if (h->nr_ext < h->pa_nr_extents)
		warn(h, "persist-alloc counts %llu extents, %lu were received",
		     h->pa_nr_extents, h->nr_ext);
	read_verdicts(h);
	split_runs(h);
	for (i = 0; i < h->nr_ext; i++) {
		struct extent *e = &h->ext[i];
		const struct alloc *x = find_alloc(a, nr_a, e->ser.phys);
		const char *now;

		if (strcmp(e->verdict, "adopted") || (e->ser.flags & PA_SER_HWPOISON))
			now = "-";
		else if (!a)
			now = "?";	/* allocations unreadable */
		else if (!x || x->owner != e->ser.owner)
			now = "freed";
		else if (!strcmp(x->state, "allocated"))
			now = "restored";
		else	/* pending, quarantined, preserved (restored and preserved again) */
			now = x->state;
		snprintf(e->now, sizeof(e->now), "%s", now);
	}
}

/* out: the extents preserved for the next kernel. */
static void collect_preserved(struct handover *h, const struct alloc *a, unsigned long nr_a)
{
	unsigned long i, n = 0;

	h->ext = calloc(nr_a ?: 1, sizeof(*h->ext));
	if (!h->ext)
		return;
	for (i = 0; i < nr_a; i++) {
		if (strcmp(a[i].state, "preserved"))
			continue;
		h->ext[n].ser.phys = a[i].phys;
		h->ext[n].ser.owner = a[i].owner;
		h->ext[n].ser.order = a[i].order;
		snprintf(h->ext[n].now, sizeof(h->ext[n].now), "preserved");
		n++;
	}
	h->nr_ext = n;
}

/* Undo seq_escape()'s octal escapes of a session name. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = 0;
}

/*
 * The granules of a persistent guest_memfd, by the owner key its ABI
 * derives from the file's data handle. Received extents only: the sender
 * preserves a file's granules when it freezes, so before that no extent
 * carries the key.
 */
static void gmem_extents(struct handover *h, struct lu_file *f)
{
	__u64 owner = GMEM_OWNER(f->data);
	unsigned long i;

	f->gmem = true;
	if (h->out)
		return;
	for (i = 0; i < h->nr_ext; i++) {
		const struct extent *e = &h->ext[i];

		if (e->ser.owner != owner || (e->ser.flags & PA_SER_HWPOISON))
			continue;
		if (!f->nr_ext++ || e->run != h->ext[i - 1].run)
			f->nr_runs++;
		f->bytes += extent_bytes(e->ser.order);
		f->order = e->ser.order;
		if (!e->verdict[0])
			continue;
		if (strcmp(e->verdict, "adopted"))
			f->nr_refused++;
		else if (!strcmp(e->now, "pending"))
			f->nr_pending++;
		else if (!strcmp(e->now, "restored") || !strcmp(e->now, "preserved") ||
			 !strcmp(e->now, "claimed"))
			f->nr_restored++;
	}
}

/* liveupdate/sessions: session lines, each followed by tab-led file lines. */
static void read_sessions(struct handover *h)
{
	char *text, *line, *save = NULL;
	struct session *s = NULL, *ns;
	struct lu_file *nf;
	size_t len;

	text = (char *)read_at(h, &len, "liveupdate/sessions");
	if (!text) {
		warn(h, "no liveupdate/sessions (%s): sessions unknown", strerror(errno));
		return;
	}
	h->sessions_read = true;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '\t') {
			struct lu_file f = { 0 };

			if (!s || sscanf(line + 1, "%llu %63s %llx %31[^\n]", &f.token,
					 f.compatible, &f.data, f.state) != 4)
				continue;
			nf = realloc(s->files, (s->nr_listed + 1) * sizeof(*nf));
			if (!nf)
				continue;
			s->files = nf;
			if (!strcmp(f.compatible, GMEM_COMPATIBLE))
				gmem_extents(h, &f);
			s->files[s->nr_listed++] = f;
			continue;
		}
		ns = realloc(h->sessions, (h->nr_sessions + 1) * sizeof(*ns));
		if (!ns)
			break;
		h->sessions = ns;
		s = &h->sessions[h->nr_sessions];
		memset(s, 0, sizeof(*s));
		{
			char dir[16];

			if (sscanf(line, "%15s %255s %15s %lu", dir, s->name, s->state,
				   &s->nr_files) != 4) {
				s = NULL;
				continue;
			}
			s->incoming = !strcmp(dir, "incoming");
		}
		unescape(s->name);
		/* The side being inspected only. */
		if (s->incoming == h->out) {
			s = NULL;
			continue;
		}
		h->nr_sessions++;
	}
	free(text);
}

/**
 * handover_read - read a handover and its fate from debugfs
 * @h: dir and out set; the rest is filled
 *
 * Return: 0, or -1 when there is no handover to read (said on stderr).
 */
int handover_read(struct handover *h)
{
	struct alloc *a;
	unsigned long nr_a;

	if (read_root(h))
		return -1;
	if (h->kho_refused)
		return 0;
	decode_persist_alloc(h);
	decode_luo(h);
	a = read_allocations(h, &nr_a);
	if (h->out)
		collect_preserved(h, a, nr_a);
	else if (h->pa_decoded)
		read_received(h, a, nr_a);
	if (!h->out && h->pa_decoded)
		read_verdicts(h);
	free(a);
	read_sessions(h);
	return 0;
}

void handover_free(struct handover *h)
{
	unsigned long i;

	for (i = 0; i < h->nr_sub; i++)
		free(h->sub[i].data);
	for (i = 0; i < h->nr_sessions; i++)
		free(h->sessions[i].files);
	free(h->sub);
	free(h->blocks);
	free(h->ext);
	free(h->sessions);
}
