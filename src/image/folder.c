/* The PNG images of a folder: the one listing policy (see image.h) for the
 * training set, the map statistics, calibrate, eval, init and replay. */
#include "anomalyd/image.h"
#include "anomalyd/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define NAMED_MAX 5 /* skipped entries named in a message; the rest counted */

typedef struct name_list {
    char **v;
    int n, cap;
} name_list;

static void list_add(name_list *l, const char *name)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = ad_xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    l->v[l->n++] = ad_xstrdup(name);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_png_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

/* "a.txt, sub/, x.jpg and 3 more": folders end in '/'. */
static void describe_skipped(char *out, size_t len, name_list *skipped)
{
    size_t o = 0;
    out[0] = 0;
    if (skipped->n == 0) return;
    qsort(skipped->v, (size_t)skipped->n, sizeof *skipped->v, cmp_names);
    for (int i = 0; i < skipped->n && i < NAMED_MAX && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", i ? ", " : "", skipped->v[i]);
    if (skipped->n > NAMED_MAX && o < len)
        snprintf(out + o, len - o, " and %d more", skipped->n - NAMED_MAX);
}

int ad_png_list(const char *dir, char ***names_out, int *count_out, char *err, size_t errlen)
{
    *names_out = NULL;
    *count_out = 0;
    DIR *d = opendir(dir);
    if (!d) return ad_err(err, errlen, "%s: cannot open the folder: %s", dir, strerror(errno));
    name_list pngs = {0}, skipped = {0};
    int subfolders = 0;
    size_t plen = strlen(dir) + 2;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.') continue;
        char *full = ad_xmalloc(plen + strlen(name) + 1);
        sprintf(full, "%s/%s", dir, name);
        struct stat sb;
        int ok = stat(full, &sb) == 0;
        if (ok && S_ISREG(sb.st_mode) && has_png_suffix(name)) {
            list_add(&pngs, name);
        } else if (ok && S_ISDIR(sb.st_mode)) {
            sprintf(full, "%s/", name);
            list_add(&skipped, full);
            subfolders++;
        } else {
            list_add(&skipped, name);
        }
        free(full);
    }
    closedir(d);

    char what[512];
    describe_skipped(what, sizeof what, &skipped);
    int rc = 0;
    if (pngs.n == 0) {
        rc = ad_err(err, errlen, "%s: no PNG images (*.png) in the folder%s%s%s", dir,
                    skipped.n ? "; it holds only " : "", what,
                    subfolders ? "; pass the folder that holds the images themselves "
                                 "(e.g. DATASET/train/good), not its parent" : "");
        free(pngs.v);
    } else {
        if (skipped.n)
            ad_log(AD_LOG_WARN, "%s: skipping %d %s (*.png): %s", dir, skipped.n,
                   skipped.n == 1 ? "entry that is not a PNG image"
                                  : "entries that are not PNG images", what);
        if (pngs.n > 1) qsort(pngs.v, (size_t)pngs.n, sizeof *pngs.v, cmp_names);
        *names_out = pngs.v;
        *count_out = pngs.n;
    }
    ad_png_list_free(skipped.v, skipped.n);
    return rc;
}

void ad_png_list_free(char **names, int count)
{
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}
