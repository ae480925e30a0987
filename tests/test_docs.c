/* The documentation cannot drift from the code or from itself:
 * - docs/configuration.md is exactly what the parser's key table generates;
 * - README.md and the pages in docs/ hold no passage twice (each topic has one home,
 *   the others link to it);
 * - every relative link in them leads to a file of the repository (and to a
 *   heading, when it names one), and every repository path they mention
 *   exists;
 * - the commented example etc/line3.yaml explains every key it sets (that it
 *   sets every key of the table is test_config's check).
 * The two text checks run on a small broken tree first, so a check that
 * stops finding anything fails too. */
#include "test_support.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anomalyd/config.h"
#include "anomalyd/util.h"

/* Words a passage must share, in a row, to count as copied: long enough that
 * a shared command line or phrase does not count, short enough that a
 * copied paragraph does. */
#define COPY_WORDS 20

/* Mentions of files that are not in the repository, left in a document its
 * owner is rewriting. Delete a row when the document no longer needs it. */
static const struct {
    const char *doc, *ref;
} known_missing[] = {
    {"docs/accuracy.md", "FINDINGS.md"},
};

/* Findings are printed, except while the checks run on their own broken
 * example tree, where finding them is the point. */
static int quiet;
#define problem(...) (quiet ? (void)0 : print_error(__VA_ARGS__))

typedef struct doc {
    char *rel;  /* path inside the tree: README.md, docs/x.md */
    char *text; /* NUL-terminated */
} doc;

typedef struct doc_set {
    const char *root;
    doc *docs;
    int n;
    char **top; /* the tree's top-level folders */
    int ntop;
    char **ignored; /* folders .gitignore names from the top ("build*", "bench/cache") */
    int nignored;
} doc_set;

static void push(char ***list, int *n, const char *s, size_t len)
{
    *list = realloc(*list, (size_t)(*n + 1) * sizeof **list);
    assert_non_null(*list);
    (*list)[*n] = strndup(s, len);
    assert_non_null((*list)[(*n)++]);
}

/* Whether path lies in a folder the repository ignores (work and build
 * folders: what the docs say about them is not a file of the tree). Only
 * .gitignore's folder lines anchored at the top count; a '*' in them
 * stands for any characters of one name. */
static int in_ignored(const doc_set *s, const char *path)
{
    for (int i = 0; i < s->nignored; i++) {
        const char *pat = s->ignored[i], *star = strchr(pat, '*');
        size_t plen = star ? (size_t)(star - pat) : strlen(pat);
        if (strncmp(path, pat, plen)) continue;
        const char *rest = path + plen;
        if (star) rest += strcspn(rest, "/");
        if (*rest == '/' || *rest == '\0') return 1;
    }
    return 0;
}

static char *read_text(const char *path)
{
    uint8_t *data;
    size_t len;
    char err[AD_ERRLEN];
    if (ad_read_file(path, 1 << 22, &data, &len, err, sizeof err)) fail_msg("%s", err);
    return (char *)data;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* README.md and the .md files of docs/ under root, in name order. */
static void docs_load(doc_set *s, const char *root)
{
    memset(s, 0, sizeof *s);
    s->root = root;
    char path[4096], **names = NULL;
    int n = 0;
    snprintf(path, sizeof path, "%s/docs", root);
    DIR *d = opendir(path);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 4 || strcmp(e->d_name + l - 3, ".md")) continue;
        snprintf(path, sizeof path, "docs/%s", e->d_name);
        push(&names, &n, path, strlen(path));
    }
    closedir(d);
    if (n > 1) qsort(names, (size_t)n, sizeof *names, by_name);
    s->docs = calloc((size_t)n + 1, sizeof *s->docs);
    assert_non_null(s->docs);
    s->docs[s->n++].rel = strdup("README.md");
    for (int i = 0; i < n; i++) s->docs[s->n++].rel = names[i];
    free(names);
    for (int i = 0; i < s->n; i++) {
        snprintf(path, sizeof path, "%s/%s", root, s->docs[i].rel);
        s->docs[i].text = read_text(path);
    }
    snprintf(path, sizeof path, "%s/.gitignore", root);
    FILE *f = fopen(path, "r");
    for (char line[512]; f && fgets(line, sizeof line, f);) {
        size_t len = strcspn(line, "\r\n");
        if (len > 2 && line[0] == '/' && line[len - 1] == '/') push(&s->ignored, &s->nignored, line + 1, len - 2);
    }
    if (f) fclose(f);
    d = opendir(root);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        struct stat st;
        if (e->d_name[0] == '.' || in_ignored(s, e->d_name) || stat(path, &st) || !S_ISDIR(st.st_mode)) continue;
        push(&s->top, &s->ntop, e->d_name, strlen(e->d_name));
    }
    closedir(d);
}

static void docs_free(doc_set *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->docs[i].rel);
        free(s->docs[i].text);
    }
    for (int i = 0; i < s->ntop; i++) free(s->top[i]);
    for (int i = 0; i < s->nignored; i++) free(s->ignored[i]);
    free(s->docs);
    free(s->top);
    free(s->ignored);
}

static int line_of(const char *text, const char *at)
{
    int line = 1;
    for (const char *p = text; p < at; p++) line += *p == '\n';
    return line;
}

/* ---- links and paths ---- */

/* GitHub's anchor of a heading: lower case, spaces to '-', punctuation
 * dropped (letters beyond ASCII kept). */
static void heading_anchor(char *out, size_t n, const char *h, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c >= 0x80 || isalnum(c) || c == '-' || c == '_') out[o++] = (char)tolower(c);
        else if (c == ' ') out[o++] = '-';
    }
    out[o] = '\0';
}

/* Whether a heading of text has this anchor (a repeated heading's later
 * anchors get -1, -2, ...). Headings inside fenced code do not count. */
static int has_anchor(const char *text, const char *anchor)
{
    char seen[256][128];
    int nseen = 0, fenced = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (!strncmp(line, "```", 3)) fenced = !fenced;
        else if (!fenced && line[0] == '#') {
            size_t i = 0;
            while (i < len && line[i] == '#') i++;
            if (i <= 6 && i < len && line[i] == ' ') {
                size_t e = len;
                while (e > i && (line[e - 1] == '#' || line[e - 1] == ' ')) e--;
                char a[128];
                heading_anchor(a, sizeof a, line + i + 1, e - i - 1);
                int dup = 0;
                for (int k = 0; k < nseen; k++) dup += !strcmp(seen[k], a);
                if (nseen < 256) snprintf(seen[nseen++], sizeof seen[0], "%s", a);
                char full[160];
                if (dup) snprintf(full, sizeof full, "%s-%d", a, dup);
                else snprintf(full, sizeof full, "%s", a);
                if (!strcmp(full, anchor)) return 1;
            }
        }
        if (!end) break;
        line = end + 1;
    }
    return 0;
}

/* dir_of(from) + "/" + rel, with "." and ".." resolved; -1 when it leaves
 * the tree. */
static int tree_path(char *out, size_t n, const char *from, const char *rel, size_t rlen)
{
    char joined[4096];
    const char *slash = strrchr(from, '/');
    int dlen = slash ? (int)(slash - from) : 0;
    snprintf(joined, sizeof joined, "%.*s%s%.*s", dlen, from, dlen ? "/" : "", (int)rlen, rel);
    char *parts[256];
    int np = 0;
    for (char *save = NULL, *t = strtok_r(joined, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (!strcmp(t, ".")) continue;
        if (!strcmp(t, "..")) {
            if (np == 0) return -1;
            np--;
            continue;
        }
        if (np < 256) parts[np++] = t;
    }
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < np && o < n; i++) o += (size_t)snprintf(out + o, n - o, "%s%s", i ? "/" : "", parts[i]);
    return o < n ? 0 : -1;
}

static int exists(const doc_set *s, const char *rel)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", s->root, rel);
    return stat(path, &st) == 0;
}

static const doc *doc_named(const doc_set *s, const char *rel)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->docs[i].rel, rel)) return &s->docs[i];
    return NULL;
}

/* One link target of d at `at`: a file of the tree and, for "#anchor", a
 * heading of that Markdown file. Web addresses are not followed. */
static int check_link(const doc_set *s, const doc *d, const char *at, const char *target, size_t len)
{
    if (len == 0 || memmem(target, len, "://", 3) || !strncmp(target, "mailto:", 7)) return 0;
    const char *hash = memchr(target, '#', len);
    size_t plen = hash ? (size_t)(hash - target) : len;
    char rel[2048], anchor[256] = "";
    if (hash) snprintf(anchor, sizeof anchor, "%.*s", (int)(len - plen - 1), hash + 1);
    if (plen == 0) snprintf(rel, sizeof rel, "%s", d->rel);
    else if (tree_path(rel, sizeof rel, d->rel, target, plen)) {
        problem("%s:%d: link to %.*s leads out of the repository\n", d->rel, line_of(d->text, at), (int)len,
                    target);
        return 1;
    }
    if (!exists(s, rel)) {
        problem("%s:%d: link to %.*s: there is no %s\n", d->rel, line_of(d->text, at), (int)len, target, rel);
        return 1;
    }
    if (!anchor[0]) return 0;
    const doc *to = doc_named(s, rel);
    char *other = NULL;
    if (!to) {
        size_t l = strlen(rel);
        if (l < 3 || strcmp(rel + l - 3, ".md")) return 0; /* an anchor in a picture or program */
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", s->root, rel);
        other = read_text(path);
    }
    int ok = has_anchor(to ? to->text : other, anchor);
    free(other);
    if (ok) return 0;
    problem("%s:%d: link to %.*s: %s has no heading with the anchor #%s\n", d->rel, line_of(d->text, at),
                (int)len, target, rel, anchor);
    return 1;
}

/* Inline links and pictures, [text](target) and ![alt](target), outside
 * code; and reference definitions, [name]: target. */
static int check_links_of(const doc_set *s, const doc *d)
{
    int bad = 0, fenced = 0;
    for (const char *line = d->text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        if (!strncmp(line, "```", 3)) fenced = !fenced;
        else if (!fenced && strncmp(line, "    ", 4)) {
            int code = 0;
            for (const char *p = line; p < end; p++) {
                if (*p == '`') code = !code;
                if (code || p[0] != ']') continue;
                if (p[1] == '(') {
                    const char *t = p + 2, *close = memchr(t, ')', (size_t)(end - t));
                    if (!close) continue;
                    const char *sp = memchr(t, ' ', (size_t)(close - t)); /* [x](target "title") */
                    bad += check_link(s, d, p, t, (size_t)((sp ? sp : close) - t));
                } else if (p[1] == ':' && line[0] == '[') {
                    const char *t = p + 2;
                    while (t < end && *t == ' ') t++;
                    const char *e = t;
                    while (e < end && *e != ' ') e++;
                    bad += check_link(s, d, p, t, (size_t)(e - t));
                }
            }
        }
        if (!*end) break;
        line = end + 1;
    }
    return bad;
}

static int path_char(char c)
{
    return isalnum((unsigned char)c) || strchr("_-./@+", c);
}

/* A file name that is a pattern, not a file: tests/test_<module>.c,
 * bench/cache/<set>/, fixtures/parts/<kind>, $BUILD/... */
static int pattern_char(char c)
{
    return c && strchr("<>*?{}[]$", c);
}

static int known(const doc *d, const char *ref)
{
    for (size_t i = 0; i < sizeof known_missing / sizeof known_missing[0]; i++)
        if (!strcmp(known_missing[i].doc, d->rel) && !strcmp(known_missing[i].ref, ref)) return 1;
    return 0;
}

/* Paths of the repository that d names in text or code: a word that starts
 * with a top-level folder ("tests/test_store.c", "bench/soak.sh"), or a
 * Markdown file's bare name ("SECURITY.md": at the top or beside d). */
static int check_paths_of(const doc_set *s, const doc *d)
{
    int bad = 0;
    const char *t = d->text;
    for (const char *p = t; *p;) {
        if (p[0] == ']' && p[1] == '(') { /* a link target: check_links_of's */
            const char *close = strchr(p, ')');
            p = close ? close : p + 1;
            continue;
        }
        if (!path_char(*p)) {
            p++;
            continue;
        }
        const char *b = p;
        while (path_char(*p)) p++;
        if ((b > t && pattern_char(b[-1])) || pattern_char(*p)) continue;
        const char *e = p;
        while (e > b && e[-1] == '.') e--; /* the end of a sentence */
        char word[1024];
        if (e - b <= 0 || e - b >= (long)sizeof word) continue;
        snprintf(word, sizeof word, "%.*s", (int)(e - b), b);
        const char *slash = strchr(word, '/');
        char rel[2048];
        if (slash) {
            int top = 0;
            for (int i = 0; i < s->ntop && !top; i++)
                top = (size_t)(slash - word) == strlen(s->top[i]) && !strncmp(word, s->top[i], (size_t)(slash - word));
            if (!top || in_ignored(s, word) || exists(s, word)) continue;
            if (known(d, word)) continue;
            problem("%s:%d: names %s, which is not in the repository\n", d->rel, line_of(t, b), word);
            bad++;
        } else if (strlen(word) > 3 && !strcmp(word + strlen(word) - 3, ".md") && word[0] != '.') {
            if (exists(s, word) || (!tree_path(rel, sizeof rel, d->rel, word, strlen(word)) && exists(s, rel)))
                continue;
            if (known(d, word)) continue;
            problem("%s:%d: names %s, which is not in the repository\n", d->rel, line_of(t, b), word);
            bad++;
        }
    }
    return bad;
}

static int dangling_references(const doc_set *s)
{
    int bad = 0;
    for (int i = 0; i < s->n; i++) bad += check_links_of(s, &s->docs[i]) + check_paths_of(s, &s->docs[i]);
    return bad;
}

/* ---- copied passages ---- */

typedef struct word {
    const char *at;
    size_t len;
} word;

typedef struct window {
    uint64_t hash;
    int doc, pos; /* the window starts at word pos of doc */
} window;

/* The words of text, split at white space. Left out: a link's target (the
 * same link reads "(docs/x.png)" in the README and "(x.png)" in docs/), and
 * Markdown's marks on their own (table rules "| --- |", "##", bullets), so
 * two wide tables do not look alike and a moved section keeps its words. */
static word *words_of(const char *text, int *n)
{
    word *w = NULL;
    int cap = 0;
    *n = 0;
    for (const char *p = text; *p;) {
        if (isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        const char *b = p;
        while (*p && !isspace((unsigned char)*p)) {
            if (p[0] == ']' && p[1] == '(') break;
            p++;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            w = realloc(w, (size_t)cap * sizeof *w);
            assert_non_null(w);
        }
        if (strspn(b, "|-:#*>+=") < (size_t)(p - b)) w[(*n)++] = (word){b, (size_t)(p - b)};
        if (p[0] == ']' && p[1] == '(') {
            const char *close = strchr(p, ')');
            p = close ? close + 1 : p + 1;
        }
    }
    return w;
}

static uint64_t window_hash(const word *w)
{
    uint64_t h = 1469598103934665603u;
    for (int i = 0; i < COPY_WORDS; i++) {
        for (size_t k = 0; k < w[i].len; k++) h = (h ^ (unsigned char)w[i].at[k]) * 1099511628211u;
        h = (h ^ ' ') * 1099511628211u;
    }
    return h;
}

static int same_window(const word *a, const word *b)
{
    for (int i = 0; i < COPY_WORDS; i++)
        if (a[i].len != b[i].len || memcmp(a[i].at, b[i].at, a[i].len)) return 0;
    return 1;
}

static int by_hash(const void *a, const void *b)
{
    const window *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    if (x->doc != y->doc) return x->doc - y->doc;
    return x->pos - y->pos;
}

typedef struct copy {
    int a, pa, b, pb; /* doc a's word pa is doc b's word pb, a < b */
} copy;

static int by_place(const void *x, const void *y)
{
    const copy *p = x, *q = y;
    if (p->a != q->a) return p->a - q->a;
    if (p->b != q->b) return p->b - q->b;
    if (p->pa - p->pb != q->pa - q->pb) return (p->pa - p->pb) - (q->pa - q->pb);
    return p->pa - q->pa;
}

/* Passages of COPY_WORDS or more words that stand in two files: each is
 * named once, with both places and its first words. */
static int copied_passages(const doc_set *s)
{
    word **w = calloc((size_t)s->n, sizeof *w);
    int *nw = calloc((size_t)s->n, sizeof *nw);
    window *win = NULL;
    size_t nwin = 0;
    assert_true(w && nw);
    for (int i = 0; i < s->n; i++) {
        w[i] = words_of(s->docs[i].text, &nw[i]);
        if (nw[i] < COPY_WORDS) continue;
        win = realloc(win, (nwin + (size_t)nw[i]) * sizeof *win);
        assert_non_null(win);
        for (int k = 0; k + COPY_WORDS <= nw[i]; k++) win[nwin++] = (window){window_hash(&w[i][k]), i, k};
    }
    if (nwin > 1) qsort(win, nwin, sizeof *win, by_hash);
    copy *c = NULL;
    size_t nc = 0, cap = 0;
    for (size_t i = 0; i < nwin; i++) {
        for (size_t j = i + 1; j < nwin && win[j].hash == win[i].hash; j++) {
            if (win[j].doc == win[i].doc || !same_window(&w[win[i].doc][win[i].pos], &w[win[j].doc][win[j].pos]))
                continue;
            if (nc == cap) {
                cap = cap ? 2 * cap : 64;
                c = realloc(c, cap * sizeof *c);
                assert_non_null(c);
            }
            c[nc++] = (copy){win[i].doc, win[i].pos, win[j].doc, win[j].pos};
        }
    }
    if (nc > 1) qsort(c, nc, sizeof *c, by_place);
    int found = 0;
    for (size_t i = 0; i < nc;) {
        size_t j = i + 1;
        while (j < nc && c[j].a == c[i].a && c[j].b == c[i].b && c[j].pa - c[j].pb == c[i].pa - c[i].pb &&
               c[j].pa == c[j - 1].pa + 1)
            j++;
        const doc *da = &s->docs[c[i].a], *db = &s->docs[c[i].b];
        const word *first = &w[c[i].a][c[i].pa];
        char shown[256] = "";
        for (int k = 0, o = 0; k < COPY_WORDS / 2 && o < (int)sizeof shown; k++)
            o += snprintf(shown + o, sizeof shown - (size_t)o, "%.*s ", (int)first[k].len, first[k].at);
        problem("%s:%d and %s:%d hold the same %d words: \"%s...\"; keep the passage in one file and link "
                    "to it from the other\n",
                    da->rel, line_of(da->text, first->at), db->rel, line_of(db->text, w[c[i].b][c[i].pb].at),
                    (int)(j - i) + COPY_WORDS - 1, shown);
        found++;
        i = j;
    }
    for (int i = 0; i < s->n; i++) free(w[i]);
    free(w);
    free(nw);
    free(win);
    free(c);
    return found;
}

/* ---- the tests ---- */

/* A tree with one of each fault the checks must find, and the same tree
 * without them. */
static void checks_find_what_they_name(void **state)
{
    (void)state;
    char *root = ts_tmpdir("docs"), path[4096];
    snprintf(path, sizeof path, "%s/docs", root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/src", root);
    assert_int_equal(mkdir(path, 0755), 0);
    free(ts_write_text(root, "src/main.c", "int main(void) { return 0; }\n"));
    free(ts_write_text(root, ".gitignore", "/build*/\n/src/cache/\n"));
    const char *para = "The writer thread commits the rows of rejects in one transaction, after the PNG files "
                       "they name are written and synced, so a committed path always names a complete file.\n";
    char readme[4096], log[4096];
    snprintf(readme, sizeof readme,
             "# t\n\nSee [the log](docs/log.md#the-log), [the main](src/main.c), `src/main.c`, "
             "`src/test_<module>.c`,\n`src/cache/run.log`, `build-asan/x`, [the queries](docs/log.md#queries-ready-to-paste) and docs/log.md.\n");
    snprintf(log, sizeof log,
             "# The log\n\n%s\n## Queries (ready to paste)\n\nBack to [README](../README.md#t), README.md.\n", para);
    free(ts_write_text(root, "README.md", readme));
    free(ts_write_text(root, "docs/log.md", log));
    doc_set s;
    docs_load(&s, root);
    assert_int_equal(dangling_references(&s), 0);
    assert_int_equal(copied_passages(&s), 0);
    docs_free(&s);

    /* broken: a paragraph copied, a missing file and heading, a path and a
     * file name that are not there, a link out of the tree */
    snprintf(readme + strlen(readme), sizeof readme - strlen(readme),
             "\n%s\n[gone](docs/gone.md), [no heading](docs/log.md#nothing), `src/gone.c`, GONE.md, "
             "[out](../x.md).\n",
             para);
    free(ts_write_text(root, "README.md", readme));
    docs_load(&s, root);
    quiet = 1;
    assert_int_equal(dangling_references(&s), 5);
    assert_int_equal(copied_passages(&s), 1);
    quiet = 0;
    docs_free(&s);
    ts_rmtree(root);
    free(root);
}

static void configuration_reference_is_current(void **state)
{
    (void)state;
    char *page = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&page, &len);
    assert_non_null(mem);
    ad_config_write_markdown_page(mem);
    fclose(mem);
    char *file = read_text(SOURCE_DIR "/docs/configuration.md");
    if (strcmp(file, page)) {
        const char *a = file, *b = page;
        while (*a && *a == *b) a++, b++;
        while (a > file && a[-1] != '\n') a--, b--;
        fail_msg("docs/configuration.md is not what the key table in src/config/config_keys.c generates; "
                 "regenerate it: cmake --build build/release --target configuration-md\n"
                 "first difference, line %d:\n  file:      %.*s\n  generated: %.*s",
                 line_of(file, a), (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
    }
    free(file);
    free(page);
}

static void no_passage_stands_in_two_files(void **state)
{
    (void)state;
    quiet = 0; /* even after a failed self-check */
    doc_set s;
    docs_load(&s, SOURCE_DIR);
    assert_non_null(doc_named(&s, "docs/service.md")); /* the pages were found */
    assert_int_equal(copied_passages(&s), 0);
    docs_free(&s);
}

static void links_and_paths_lead_somewhere(void **state)
{
    (void)state;
    quiet = 0; /* even after a failed self-check */
    doc_set s;
    docs_load(&s, SOURCE_DIR);
    assert_int_equal(dangling_references(&s), 0);
    docs_free(&s);
}

/* Each key of the example config has a comment above it or above its group
 * (ts_yaml_keys): a key added without a word on what it does fails here. */
static void example_config_explains_every_key(void **state)
{
    (void)state;
    uint8_t *text;
    size_t len, n;
    char err[AD_ERRLEN];
    assert_int_equal(ad_read_file(SOURCE_DIR "/etc/line3.yaml", 1 << 20, &text, &len, err, sizeof err), 0);
    ts_yaml_key *keys = ts_yaml_keys((const char *)text, &n);
    int undocumented = 0, table_keys = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ad_config_key_find(keys[i].path)) continue; /* sections, camera.roi */
        table_keys++;
        if (!keys[i].documented) {
            print_error("etc/line3.yaml:%d: %s has no comment above it or its group\n", keys[i].line,
                        keys[i].path);
            undocumented++;
        }
    }
    assert_int_equal(undocumented, 0);
    assert_true(table_keys >= 50);
    free(keys);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checks_find_what_they_name),
        cmocka_unit_test(configuration_reference_is_current),
        cmocka_unit_test(no_passage_stands_in_two_files),
        cmocka_unit_test(links_and_paths_lead_somewhere),
        cmocka_unit_test(example_config_explains_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
