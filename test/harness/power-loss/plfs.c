/*
 * plfs — the power-loss file system of dgent's tests (see test/README.md, "Power loss").
 *
 * A FUSE file system held in memory that serves reads and writes like any other and records
 * every change it is asked to make, in order, in a journal file outside the mount: writes,
 * truncations, creations, links, unlinks, renames, and every fsync / fdatasync of a file or a
 * directory. It decides nothing about what survives a power loss: the journal is replayed by
 * model.ts, which keeps written-but-unsynced data apart and builds the disk as it would be
 * after a power loss at any point of the journal.
 *
 *   plfs <journal-file> <mountpoint>         (mounts in the foreground, single-threaded)
 *
 * Single-threaded on purpose: requests are handled, and journaled, one at a time in the order the
 * kernel delivers them. The kernel serialises a file's writes and its fsync (inode lock), so an
 * fsync record covers exactly the writes to that file journaled before it.
 *
 * Control file `/.plfs` (not listed by readdir): write "mark\n", then read the answer, the number
 * of journal records so far, after the journal has been flushed to its file.
 *
 * Journal records (little-endian; names are u16 length + bytes):
 *   'W' ino:u64 offset:u64 len:u32 bytes     write
 *   'T' ino:u64 size:u64                     truncate (ftruncate, O_TRUNC)
 *   'S' ino:u64 datasync:u8                  fsync / fdatasync of a file
 *   'D' ino:u64                              fsync of a directory
 *   'C' parent:u64 name ino:u64 kind:u8      new file (kind 'f') or directory (kind 'd')
 *   'L' parent:u64 name ino:u64              new name for an existing file (link)
 *   'U' parent:u64 name                      unlink / rmdir
 *   'N' from:u64 name to:u64 name ino:u64    rename (replacing whatever `to/name` was)
 */
#define FUSE_USE_VERSION 31
#include <fuse.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define CTL_NAME ".plfs"
#define CTL_HANDLE ((uint64_t)1)

struct node;

struct entry {
	char *name;
	struct node *node;
};

struct node {
	uint64_t ino;
	int dir;
	unsigned nlink;
	/* files */
	char *data;
	size_t size, cap;
	/* directories */
	struct entry *entries;
	size_t count, room;
	struct timespec mtime;
};

static struct node *root;
static uint64_t next_ino = 2;
static FILE *journal;
static uint64_t records;
static char ctl_answer[64];

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* ---- journal ---- */

static void put_bytes(const void *p, size_t n)
{
	if (n > 0 && fwrite(p, 1, n, journal) != n)
		die("plfs: journal write");
}

static void put_u8(uint8_t v) { put_bytes(&v, 1); }
static void put_u16(uint16_t v) { put_bytes(&v, 2); }
static void put_u32(uint32_t v) { put_bytes(&v, 4); }
static void put_u64(uint64_t v) { put_bytes(&v, 8); }

static void put_name(const char *s)
{
	size_t n = strlen(s);
	put_u16((uint16_t)n);
	put_bytes(s, n);
}

static void begin(char type)
{
	put_u8((uint8_t)type);
	records++;
}

/* ---- tree ---- */

static struct node *new_node(int dir)
{
	struct node *n = calloc(1, sizeof *n);
	if (!n)
		die("plfs: calloc");
	n->ino = dir && !root ? 1 : next_ino++;
	n->dir = dir;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	return n;
}

static struct entry *find(struct node *dir, const char *name, size_t len)
{
	for (size_t i = 0; i < dir->count; i++)
		if (strlen(dir->entries[i].name) == len && memcmp(dir->entries[i].name, name, len) == 0)
			return &dir->entries[i];
	return NULL;
}

/* The node at `path`, or NULL (errno ENOENT / ENOTDIR). */
static struct node *lookup(const char *path)
{
	struct node *n = root;
	const char *p = path;
	while (*p == '/')
		p++;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (!n->dir) {
			errno = ENOTDIR;
			return NULL;
		}
		struct entry *e = find(n, p, len);
		if (!e) {
			errno = ENOENT;
			return NULL;
		}
		n = e->node;
		p += len;
		while (*p == '/')
			p++;
	}
	return n;
}

/* Splits `path` into its parent directory and last name (`name` points into `path`). */
static struct node *parent_of(const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	char buf[4096];
	size_t len = (size_t)(slash - path);
	if (len >= sizeof buf) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	memcpy(buf, path, len);
	buf[len] = 0;
	*name = slash + 1;
	struct node *dir = lookup(buf);
	if (dir && !dir->dir) {
		errno = ENOTDIR;
		return NULL;
	}
	return dir;
}

static void add_entry(struct node *dir, const char *name, struct node *n)
{
	if (dir->count == dir->room) {
		dir->room = dir->room ? dir->room * 2 : 8;
		dir->entries = realloc(dir->entries, dir->room * sizeof *dir->entries);
		if (!dir->entries)
			die("plfs: realloc");
	}
	dir->entries[dir->count].name = strdup(name);
	dir->entries[dir->count].node = n;
	dir->count++;
	n->nlink++;
	clock_gettime(CLOCK_REALTIME, &dir->mtime);
}

static void remove_entry(struct node *dir, struct entry *e)
{
	e->node->nlink--;
	free(e->name);
	*e = dir->entries[--dir->count];
	clock_gettime(CLOCK_REALTIME, &dir->mtime);
}

static int is_ctl(const char *path)
{
	return path && strcmp(path, "/" CTL_NAME) == 0;
}

static struct node *node_of(const char *path, struct fuse_file_info *fi)
{
	if (fi && fi->fh && fi->fh != CTL_HANDLE)
		return (struct node *)(uintptr_t)fi->fh;
	if (!path) {
		errno = EBADF;
		return NULL;
	}
	return lookup(path);
}

static int set_size(struct node *n, size_t size)
{
	if (size > n->cap) {
		size_t cap = n->cap ? n->cap : 4096;
		while (cap < size)
			cap *= 2;
		char *data = realloc(n->data, cap);
		if (!data)
			return -ENOSPC;
		n->data = data;
		n->cap = cap;
	}
	if (size > n->size)
		memset(n->data + n->size, 0, size - n->size);
	n->size = size;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	return 0;
}

/* ---- operations ---- */

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE; /* every write reaches us when it is made */
	cfg->use_ino = 1;
	cfg->hard_remove = 1; /* no .fuse_hidden files: an open file's data lives on in its node */
	cfg->nullpath_ok = 1;
	cfg->direct_io = 0;
	printf("ready\n");
	fflush(stdout);
	return NULL;
}

static void fill_stat(struct node *n, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = n->ino;
	st->st_mode = n->dir ? S_IFDIR | 0755 : S_IFREG | 0644;
	st->st_nlink = n->dir ? 2 : n->nlink;
	st->st_size = n->dir ? 4096 : (off_t)n->size;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_mtim = st->st_ctim = st->st_atim = n->mtime;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if (is_ctl(path) || (fi && fi->fh == CTL_HANDLE)) {
		memset(st, 0, sizeof *st);
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		return 0;
	}
	struct node *n = node_of(path, fi);
	if (!n)
		return -errno;
	fill_stat(n, st);
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	(void)off;
	(void)flags;
	struct node *n = node_of(path, fi);
	if (!n)
		return -errno;
	if (!n->dir)
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	for (size_t i = 0; i < n->count; i++)
		fill(buf, n->entries[i].name, NULL, 0, 0);
	return 0;
}

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct node *n = lookup(path);
	if (!n)
		return -errno;
	if (!n->dir)
		return -ENOTDIR;
	fi->fh = (uint64_t)(uintptr_t)n;
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	if (is_ctl(path)) {
		fi->fh = CTL_HANDLE;
		fi->direct_io = 1;
		return 0;
	}
	struct node *n = lookup(path);
	if (!n)
		return -errno;
	if (n->dir)
		return -EISDIR;
	fi->fh = (uint64_t)(uintptr_t)n;
	return 0;
}

static int make(const char *path, int dir, struct node **out)
{
	const char *name;
	struct node *parent = parent_of(path, &name);
	if (!parent)
		return -errno;
	if (strcmp(name, CTL_NAME) == 0 || find(parent, name, strlen(name)))
		return -EEXIST;
	struct node *n = new_node(dir);
	add_entry(parent, name, n);
	begin('C');
	put_u64(parent->ino);
	put_name(name);
	put_u64(n->ino);
	put_u8(dir ? 'd' : 'f');
	*out = n;
	return 0;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	struct node *n;
	int r = make(path, 0, &n);
	if (r == 0)
		fi->fh = (uint64_t)(uintptr_t)n;
	return r;
}

static int fs_mkdir(const char *path, mode_t mode)
{
	(void)mode;
	struct node *n;
	return make(path, 1, &n);
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (fi->fh == CTL_HANDLE) {
		size_t len = strlen(ctl_answer);
		if ((size_t)off >= len)
			return 0;
		if (size > len - (size_t)off)
			size = len - (size_t)off;
		memcpy(buf, ctl_answer + off, size);
		return (int)size;
	}
	struct node *n = node_of(path, fi);
	if (!n)
		return -errno;
	if ((size_t)off >= n->size)
		return 0;
	if (size > n->size - (size_t)off)
		size = n->size - (size_t)off;
	memcpy(buf, n->data + off, size);
	return (int)size;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (fi->fh == CTL_HANDLE) {
		if (size >= 4 && memcmp(buf, "mark", 4) == 0) {
			if (fflush(journal) != 0)
				return -EIO;
			snprintf(ctl_answer, sizeof ctl_answer, "%llu\n", (unsigned long long)records);
			return (int)size;
		}
		return -EINVAL;
	}
	struct node *n = node_of(path, fi);
	if (!n)
		return -errno;
	if (size == 0)
		return 0;
	size_t end = (size_t)off + size;
	if (end > n->size) {
		int r = set_size(n, end);
		if (r)
			return r;
	}
	memcpy(n->data + off, buf, size);
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	begin('W');
	put_u64(n->ino);
	put_u64((uint64_t)off);
	put_u32((uint32_t)size);
	put_bytes(buf, size);
	return (int)size;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (is_ctl(path) || (fi && fi->fh == CTL_HANDLE))
		return 0;
	struct node *n = node_of(path, fi);
	if (!n)
		return -errno;
	if (n->dir)
		return -EISDIR;
	int r = set_size(n, (size_t)size);
	if (r)
		return r;
	begin('T');
	put_u64(n->ino);
	put_u64((uint64_t)size);
	return 0;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	if (fi->fh == CTL_HANDLE)
		return 0;
	struct node *n = node_of(path, fi);
	if (!n)
		return -errno;
	begin('S');
	put_u64(n->ino);
	put_u8(datasync ? 1 : 0);
	return 0;
}

static int fs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	struct node *n = node_of(path, fi);
	if (!n)
		return -errno;
	begin('D');
	put_u64(n->ino);
	return 0;
}

static int fs_unlink(const char *path)
{
	const char *name;
	struct node *parent = parent_of(path, &name);
	if (!parent)
		return -errno;
	struct entry *e = find(parent, name, strlen(name));
	if (!e)
		return -ENOENT;
	if (e->node->dir)
		return -EISDIR;
	remove_entry(parent, e);
	begin('U');
	put_u64(parent->ino);
	put_name(name);
	return 0;
}

static int fs_rmdir(const char *path)
{
	const char *name;
	struct node *parent = parent_of(path, &name);
	if (!parent)
		return -errno;
	struct entry *e = find(parent, name, strlen(name));
	if (!e)
		return -ENOENT;
	if (!e->node->dir)
		return -ENOTDIR;
	if (e->node->count > 0)
		return -ENOTEMPTY;
	remove_entry(parent, e);
	begin('U');
	put_u64(parent->ino);
	put_name(name);
	return 0;
}

static int fs_link(const char *from, const char *to)
{
	struct node *n = lookup(from);
	if (!n)
		return -errno;
	if (n->dir)
		return -EPERM;
	const char *name;
	struct node *parent = parent_of(to, &name);
	if (!parent)
		return -errno;
	if (find(parent, name, strlen(name)))
		return -EEXIST;
	add_entry(parent, name, n);
	begin('L');
	put_u64(parent->ino);
	put_name(name);
	put_u64(n->ino);
	return 0;
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags != 0)
		return -EINVAL; /* RENAME_NOREPLACE / RENAME_EXCHANGE: not needed by dgent */
	const char *fname, *tname;
	struct node *fdir = parent_of(from, &fname);
	if (!fdir)
		return -errno;
	struct node *tdir = parent_of(to, &tname);
	if (!tdir)
		return -errno;
	struct entry *src = find(fdir, fname, strlen(fname));
	if (!src)
		return -ENOENT;
	struct node *n = src->node;
	struct entry *dst = find(tdir, tname, strlen(tname));
	if (dst && dst->node == n)
		return 0;
	if (dst) {
		if (dst->node->dir && (!n->dir || dst->node->count > 0))
			return dst->node->dir && n->dir ? -ENOTEMPTY : -EISDIR;
		if (!dst->node->dir && n->dir)
			return -ENOTDIR;
		remove_entry(tdir, dst);
	}
	add_entry(tdir, tname, n);
	remove_entry(fdir, find(fdir, fname, strlen(fname))); /* looked up again: entries may have moved */
	begin('N');
	put_u64(fdir->ino);
	put_name(fname);
	put_u64(tdir->ino);
	put_name(tname);
	put_u64(n->ino);
	return 0;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)tv;
	if (is_ctl(path) || (fi && fi->fh == CTL_HANDLE))
		return 0;
	struct node *n = node_of(path, fi);
	return n ? 0 : -errno;
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	return fs_utimens(path, NULL, fi);
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)uid;
	(void)gid;
	return fs_utimens(path, NULL, fi);
}

static int fs_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	memset(st, 0, sizeof *st);
	st->f_bsize = st->f_frsize = 4096;
	st->f_blocks = st->f_bfree = st->f_bavail = 1 << 20;
	st->f_files = st->f_ffree = 1 << 20;
	st->f_namemax = 255;
	return 0;
}

static const struct fuse_operations ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.opendir = fs_opendir,
	.open = fs_open,
	.create = fs_create,
	.mkdir = fs_mkdir,
	.read = fs_read,
	.write = fs_write,
	.truncate = fs_truncate,
	.fsync = fs_fsync,
	.fsyncdir = fs_fsyncdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.link = fs_link,
	.rename = fs_rename,
	.utimens = fs_utimens,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.statfs = fs_statfs,
};

int main(int argc, char *argv[])
{
	if (argc != 3) {
		fprintf(stderr, "usage: plfs <journal-file> <mountpoint>\n");
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGTERM); /* unmount when the test process goes away */
	journal = fopen(argv[1], "wb");
	if (!journal)
		die(argv[1]);
	setvbuf(journal, NULL, _IOFBF, 1 << 20);
	root = new_node(1);
	root->nlink = 1;
	char *args[] = { argv[0], argv[2], "-f", "-s", "-o", "fsname=plfs,subtype=plfs,auto_unmount", NULL };
	int r = fuse_main(6, args, &ops, NULL);
	if (fflush(journal) != 0)
		die("plfs: journal flush");
	return r;
}
