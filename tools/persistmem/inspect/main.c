// SPDX-License-Identifier: GPL-2.0
/*
 * pm-inspect: the KHO handover inspector.
 *
 *   pm-inspect [--out] [--json] [--extents] [--debugfs DIR]
 *
 * Shows what the previous kernel handed over (default: kho/in) or what
 * this kernel will hand over (--out, before a kexec): KHO's subtrees,
 * persist_alloc's pools and extents, LUO's sessions and the persistent
 * guest_memfd files in them; on the receiving side, what this kernel
 * adopted, refused (and why) or still holds pending. A table by default,
 * one JSON object with --json; --extents lists every extent in the table.
 *
 * Exit status: 0 all decoded, 1 no handover to read or bad arguments,
 * 2 a blob of a version this inspector does not know (refused by name).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handover.h"

struct counts {
	unsigned long adopted, refused, pending, restored, preserved, quarantined, freed, failed;
	unsigned long unknown;	/* no verdict read */
	__u64 bytes;
};

static void count_extents(const struct handover *h, struct counts *c)
{
	unsigned long i;

	memset(c, 0, sizeof(*c));
	/* Counted by the head but not received (no array): refused all the same. */
	if (!h->out && h->pa_nr_extents > h->nr_runs)
		c->refused = h->pa_nr_extents - h->nr_runs;
	for (i = 0; i < h->nr_ext; i++) {
		const struct extent *e = &h->ext[i];

		if (e->ser.flags & PA_SER_HWPOISON) {
			c->failed++;
			continue;
		}
		c->bytes += extent_bytes(e->ser.order);
		if (h->out) {
			c->preserved++;
			continue;
		}
		if (!e->verdict[0]) {
			c->unknown++;
			continue;
		}
		if (strcmp(e->verdict, "adopted")) {
			c->refused++;
			continue;
		}
		c->adopted++;
		if (!strcmp(e->now, "pending"))
			c->pending++;
		else if (!strcmp(e->now, "quarantined"))
			c->quarantined++;
		else if (!strcmp(e->now, "freed"))
			c->freed++;
		else if (!strcmp(e->now, "?"))
			c->unknown++;
		else
			c->restored++;
	}
}

/* @bytes in MiB, or KiB below a MiB. */
static const char *bytes_str(__u64 bytes, char *buf, size_t size)
{
	if (bytes && bytes < (1ull << 20))
		snprintf(buf, size, "%llu KiB", bytes >> 10);
	else
		snprintf(buf, size, "%llu MiB", bytes >> 20);
	return buf;
}

static void attrs_str(__u32 flags, char *buf, size_t size)
{
	__u32 unknown = flags & ~(PA_SER_NO_DIRECT_MAP | PA_SER_HVO | PA_SER_HWPOISON);
	size_t len;

	snprintf(buf, size, "%s%s%s", flags & PA_SER_NO_DIRECT_MAP ? "ndm," : "",
		 flags & PA_SER_HVO ? "hvo," : "", flags & PA_SER_HWPOISON ? "hwpoison," : "");
	len = strlen(buf);
	if (unknown)
		snprintf(buf + len, size - len, "%#x", unknown);
	else if (len)
		buf[len - 1] = 0;
	else
		snprintf(buf, size, "-");
}

static bool refused_any(const struct handover *h)
{
	unsigned long i;

	if (h->kho_refused)
		return true;
	for (i = 0; i < h->nr_sub; i++)
		if (h->sub[i].refused)
			return true;
	return false;
}

static void print_table(const struct handover *h, bool all_extents)
{
	const char *side = h->out ? "to hand over" : "received";
	unsigned long i, j, nr_adopted = 0;
	struct counts c;
	char attrs[32], size[32];

	printf("KHO handover %s (%s/kho/%s): %s%s\n", side, h->dir, h->out ? "out" : "in",
	       h->kho_compatible,
	       h->kho_refused ? " REFUSED: this inspector knows " KHO_COMPATIBLE : "");
	if (h->kho_refused)
		return;
	for (i = 0; i < h->nr_sub; i++)
		printf("  %-22s %8llu bytes  %s\n", h->sub[i].name, h->sub[i].size,
		       h->sub[i].decoded);

	if (h->pa_decoded) {
		for (i = 0; i < h->nr_blocks; i++)
			nr_adopted += !strcmp(h->blocks[i].verdict, "adopted");
		printf("persist_alloc pools: %lu blocks", h->nr_blocks);
		if (!h->out)
			printf(", %lu adopted, %lu refused", nr_adopted, h->nr_blocks - nr_adopted);
		printf("\n");
		for (i = 0; i < h->nr_blocks; i++) {
			const struct block *b = &h->blocks[i];

			printf("  block 0x%012llx node %u%s%s%s%s\n", b->ser.phys, b->ser.nid,
			       b->ser.flags & PA_BLOCK_SER_HVO_1G ? " hvo-1g" : "",
			       b->ser.flags & PA_BLOCK_SER_HVO_FREE ? " hvo-free" : "",
			       h->out ? "" : "  ",
			       h->out ? "" : b->verdict[0] ? b->verdict : "(no verdict)");
		}
		count_extents(h, &c);
		if (h->out)
			printf("persist_alloc extents: %lu preserved, %s\n", c.preserved,
			       bytes_str(c.bytes, size, sizeof(size)));
		else
			printf("persist_alloc extents: %llu handed over (%s): ",
			       h->nr_ext - c.failed +
			       (h->pa_nr_extents > h->nr_runs ? h->pa_nr_extents - h->nr_runs : 0),
			       bytes_str(c.bytes, size, sizeof(size)));
		if (!h->out) {
			printf("%lu adopted (%lu pending, %lu restored, ", c.adopted, c.pending,
			       c.restored);
			printf("%lu freed since, %lu quarantined), ", c.freed, c.quarantined);
			printf("%lu refused; %lu failed pages", c.refused, c.failed);
			if (c.unknown)
				printf("; %lu of unknown fate", c.unknown);
			printf("\n");
		}
		for (i = 0; i < h->nr_ext; i++) {
			const struct extent *e = &h->ext[i];

			if (!all_extents && (h->out || !strcmp(e->verdict, "adopted")))
				continue;
			attrs_str(e->ser.flags, attrs, sizeof(attrs));
			printf("  extent 0x%012llx %s owner 0x%016llx %-8s %s%s%s\n",
			       e->ser.phys, size_str(e->ser.order), e->ser.owner, attrs,
			       h->out ? "" : e->verdict, h->out ? "" : " / ", e->now);
		}
	}

	if (h->sessions_read) {
		if (h->out)
			printf("LUO sessions preserved: %lu\n", h->nr_sessions);
		else
			printf("LUO sessions handed over, not finished: %lu %s\n", h->nr_sessions,
			       "(LUO lists them once /dev/liveupdate is opened)");
		for (i = 0; i < h->nr_sessions; i++) {
			const struct session *s = &h->sessions[i];

			printf("  session \"%s\" %s, %lu files\n", s->name, s->state, s->nr_files);
			for (j = 0; j < s->nr_listed; j++) {
				const struct lu_file *f = &s->files[j];

				printf("    token %-6llu %-24s %s", f->token, f->compatible,
				       f->state);
				if (f->gmem && h->out)
					printf(" (its granules join the handover at freeze)");
				else if (f->gmem)
					printf(": %s in %lu extents of %s: ",
					       bytes_str(f->bytes, size, sizeof(size)), f->nr_ext,
					       size_str(f->order));
				if (f->gmem && !h->out)
					printf("%lu pending, %lu restored, %lu refused",
					       f->nr_pending, f->nr_restored, f->nr_refused);
				printf("\n");
			}
		}
	}
	for (i = 0; i < h->nr_warn; i++)
		printf("warning: %s\n", h->warn[i]);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = *s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* ,"key":value members; every object opens with its first member by hand. */
static void jnum(const char *key, unsigned long long v)
{
	printf(",\"%s\":%llu", key, v);
}

static void jstr(const char *key, const char *v)
{
	printf(",\"%s\":", key);
	json_str(v);
}

static void jbool(const char *key, bool v)
{
	printf(",\"%s\":%s", key, v ? "true" : "false");
}

static void json_persist_alloc(const struct handover *h)
{
	unsigned long i;
	struct counts c;

	count_extents(h, &c);
	printf(",\"persist_alloc\":{\"compatible\":\"%s\"", PA_COMPATIBLE);
	jnum("nr_blocks", h->pa_nr_blocks);
	jnum("nr_extents", h->pa_nr_extents);
	if (!h->out)
		jnum("nr_runs_received", h->nr_runs);
	printf(",\"blocks\":[");
	for (i = 0; i < h->nr_blocks; i++) {
		printf("%s{\"phys\":%llu", i ? "," : "", h->blocks[i].ser.phys);
		jnum("node", h->blocks[i].ser.nid);
		jnum("flags", h->blocks[i].ser.flags);
		jstr("verdict", h->blocks[i].verdict);
		printf("}");
	}
	printf("],\"summary\":{\"adopted\":%lu", c.adopted);
	jnum("refused", c.refused);
	jnum("pending", c.pending);
	jnum("restored", c.restored);
	jnum("freed", c.freed);
	jnum("quarantined", c.quarantined);
	jnum("preserved", c.preserved);
	jnum("failed_pages", c.failed);
	jnum("unknown", c.unknown);
	jnum("bytes", c.bytes);
	printf("},\"extents\":[");
	for (i = 0; i < h->nr_ext; i++) {
		const struct extent *e = &h->ext[i];

		printf("%s{\"phys\":%llu", i ? "," : "", e->ser.phys);
		jnum("order", e->ser.order);
		jnum("owner", e->ser.owner);
		jnum("flags", e->ser.flags);
		jstr("verdict", e->verdict);
		jstr("now", e->now);
		printf("}");
	}
	printf("]}");
}

static void json_session(const struct handover *h, const struct session *s)
{
	unsigned long j;

	printf("{\"name\":");
	json_str(s->name);
	jstr("state", s->state);
	jnum("nr_files", s->nr_files);
	printf(",\"files\":[");
	for (j = 0; j < s->nr_listed; j++) {
		const struct lu_file *f = &s->files[j];

		printf("%s{\"token\":%llu", j ? "," : "", f->token);
		jstr("compatible", f->compatible);
		jnum("data", f->data);
		jstr("state", f->state);
		if (f->gmem && !h->out) {
			jnum("extents", f->nr_ext);
			jnum("bytes", f->bytes);
			jstr("granule", size_str(f->order));
			jnum("pending", f->nr_pending);
			jnum("restored", f->nr_restored);
			jnum("refused", f->nr_refused);
			jnum("runs", f->nr_runs);
		}
		printf("}");
	}
	printf("]}");
}

static void print_json(const struct handover *h)
{
	unsigned long i;

	printf("{\"side\":\"%s\",\"kho\":{\"compatible\":", h->out ? "out" : "in");
	json_str(h->kho_compatible);
	jbool("refused", h->kho_refused);
	printf(",\"subtrees\":[");
	for (i = 0; i < h->nr_sub; i++) {
		printf("%s{\"name\":", i ? "," : "");
		json_str(h->sub[i].name);
		jnum("phys", h->sub[i].phys);
		jnum("size", h->sub[i].size);
		jbool("refused", h->sub[i].refused);
		jstr("decoded", h->sub[i].decoded);
		printf("}");
	}
	printf("]}");
	if (h->pa_decoded)
		json_persist_alloc(h);
	if (h->luo_decoded) {
		printf(",\"luo\":{\"compatible\":\"%s\"", LUO_COMPATIBLE);
		jnum("liveupdate", h->liveupdate_num);
		printf("}");
	}
	if (h->sessions_read) {
		printf(",\"sessions\":[");
		for (i = 0; i < h->nr_sessions; i++) {
			printf("%s", i ? "," : "");
			json_session(h, &h->sessions[i]);
		}
		printf("]");
	}
	printf(",\"warnings\":[");
	for (i = 0; i < h->nr_warn; i++) {
		printf("%s", i ? "," : "");
		json_str(h->warn[i]);
	}
	printf("]}\n");
}

static void print_usage(void)
{
	fprintf(stderr, "pm-inspect [--out] [--json] [--extents] [--debugfs DIR]\n");
	exit(1);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", no_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "extents", no_argument, NULL, 'e' },
		{ "debugfs", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct handover h = { 0 };
	bool json = false, all = false;
	int opt, ret;

	snprintf(h.dir, sizeof(h.dir), "/sys/kernel/debug");
	while ((opt = getopt_long(argc, argv, "ojed:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			h.out = true;
			break;
		case 'j':
			json = true;
			break;
		case 'e':
			all = true;
			break;
		case 'd':
			if (strlen(optarg) >= sizeof(h.dir)) {
				fprintf(stderr, "pm-inspect: --debugfs path too long\n");
				return 1;
			}
			snprintf(h.dir, sizeof(h.dir), "%s", optarg);
			break;
		default:
			print_usage();
		}
	}
	if (optind != argc)
		print_usage();
	if (handover_read(&h))
		return 1;
	if (json)
		print_json(&h);
	else
		print_table(&h, all);
	ret = refused_any(&h) ? 2 : 0;
	handover_free(&h);
	return ret;
}
