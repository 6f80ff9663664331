/*
 * cli_table.c: aligned text tables for warrenctl's inspection commands
 * (tunnels, and later members, converge). Cells are copied; widths are
 * computed when printing. No colours, no terminal probing.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wr.h"

struct cli_table {
    size_t ncols;
    char **headers;
    bool *right;
    char **cells; /* rows * ncols */
    size_t rows;
    size_t cap;
};

struct cli_table *cli_table_new(const char *const *headers, size_t ncols)
{
    struct cli_table *t = wr_xcalloc(1, sizeof(*t));
    t->ncols = ncols;
    t->headers = wr_xcalloc(ncols, sizeof(char *));
    t->right = wr_xcalloc(ncols, sizeof(bool));
    for (size_t i = 0; i < ncols; i++) {
        const char *h = headers[i];
        t->right[i] = h[0] == '>';
        t->headers[i] = wr_xstrdup(t->right[i] ? h + 1 : h);
    }
    return t;
}

void cli_table_add(struct cli_table *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        char **n = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
        if (n == NULL)
            wr_fatal("what=out_of_memory");
        t->cells = n;
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->rows * t->ncols + i] = wr_xstrdup(cells[i] != NULL ? cells[i] : "-");
    t->rows++;
}

size_t cli_table_rows(const struct cli_table *t)
{
    return t->rows;
}

static void cli_table_print_row(const struct cli_table *t, char *const *row, const size_t *w,
                                FILE *f)
{
    for (size_t i = 0; i < t->ncols; i++) {
        bool last = i + 1 == t->ncols;
        if (t->right[i])
            fprintf(f, "%*s", (int)w[i], row[i]);
        else if (last)
            fputs(row[i], f); /* no trailing spaces */
        else
            fprintf(f, "%-*s", (int)w[i], row[i]);
        fputs(last ? "\n" : "  ", f);
    }
}

void cli_table_print(const struct cli_table *t, FILE *f)
{
    size_t *w = wr_xcalloc(t->ncols, sizeof(size_t));
    for (size_t i = 0; i < t->ncols; i++) {
        w[i] = strlen(t->headers[i]);
        for (size_t r = 0; r < t->rows; r++) {
            size_t l = strlen(t->cells[r * t->ncols + i]);
            if (l > w[i])
                w[i] = l;
        }
    }
    cli_table_print_row(t, t->headers, w, f);
    for (size_t r = 0; r < t->rows; r++)
        cli_table_print_row(t, &t->cells[r * t->ncols], w, f);
    free(w);
}

void cli_table_free(struct cli_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    for (size_t i = 0; i < t->ncols; i++)
        free(t->headers[i]);
    free(t->cells);
    free(t->headers);
    free(t->right);
    free(t);
}
