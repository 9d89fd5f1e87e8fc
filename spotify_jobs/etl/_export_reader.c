/* Spotify export files (JSON arrays of objects) straight into typed columns, without a Python object per value.

read_exports(files, fields) reads each file of `files` (bytes-like) and returns, for the records of the files it
could read, per requested field: the JSON kind of its value (KIND_* below; ABSENT when the record lacks it), the
value of an integer, and the characters of a string (Arrow-style int32 offsets + UTF-8 data), plus where each
record lies in its file. It releases the GIL while it reads.

It reads a file only when it is sure to read it exactly as a standard JSON decoder would, and otherwise marks it
"not read" (its records left out) so that the caller decodes it the slow way: anything that is not valid JSON
(invalid UTF-8, control characters in strings, lone surrogates, bad numbers, trailing data), a top level that is
not an array, a requested key written with escapes or given twice in one object, nesting beyond MAX_DEPTH, and
numbers near or beyond the range a decoder takes (see read_number).
An array element that is not an object is a record whose fields are all absent.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    KIND_ABSENT, KIND_NULL, KIND_FALSE, KIND_TRUE, KIND_INT, KIND_BIGINT, KIND_FLOAT, KIND_STRING, KIND_ARRAY,
    KIND_OBJECT
};
#define MAX_FIELDS 32
#define MAX_DEPTH 64
#define MAX_KEY 64

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_grow(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

typedef struct {
    Buf kinds;   /* uint8 per record */
    Buf ints;    /* int64 per record up to the last integer (none when the field holds no integer) */
    Buf offsets; /* int32 per record + 1 */
    Buf chars;   /* UTF-8 */
} Column;

typedef struct {
    const char *names[MAX_FIELDS];
    size_t lengths[MAX_FIELDS];
    int8_t by_length[MAX_KEY + 1][MAX_FIELDS + 1]; /* per key length: the fields of that length, then -1 */
    int count;
    Column columns[MAX_FIELDS];
    Buf starts, ends; /* int64 per record: the element's byte span in its file */
    int64_t records;
    int64_t max_int_digits; /* sys.get_int_max_str_digits(), which msgspec follows; 0: no limit */
    int out_of_memory;
} Reader;

typedef struct {
    const unsigned char *p, *end, *begin;
} Cursor;

/* 1: byte ends a fast run of string characters (quote, backslash, control character, non-ASCII). */
static unsigned char SPECIAL[256];

static void init_tables(void) {
    for (int c = 0; c < 256; c++) SPECIAL[c] = (c < 0x20 || c == '"' || c == '\\' || c >= 0x80);
}

/* Past the plain string characters at p: 8 bytes at a time while none of them may be special (the test may
   flag a plain word, never miss a special byte), else byte by byte. */
static inline const unsigned char *plain_run(const unsigned char *p, const unsigned char *end) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    for (;;) {
        while (end - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            uint64_t quote = v ^ (ones * '"'), backslash = v ^ (ones * '\\');
            uint64_t special = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | (v - ones * 0x20) | v;
            if (special & highs) break;
            p += 8;
        }
        const unsigned char *stop = end - p >= 8 ? p + 8 : end;
        while (p < stop && !SPECIAL[*p]) p++;
        if (p < stop || p == end) return p;
    }
}

static inline void skip_ws(Cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t')) c->p++;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), 0 when invalid. */
static inline int utf8_sequence(const unsigned char *p, const unsigned char *end) {
    unsigned char b = p[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) n = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else return 0;
    if (end - p < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

static inline int hex4(const unsigned char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') v |= ch - '0';
        else if (ch >= 'a' && ch <= 'f') v |= ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F') v |= ch - 'A' + 10;
        else return -1;
    }
    *out = v;
    return 0;
}

static inline int put(Reader *r, Buf *out, const void *bytes, size_t n) {
    if (buf_grow(out, n)) {
        r->out_of_memory = 1;
        return -1;
    }
    memcpy(out->data + out->len, bytes, n);
    out->len += n;
    return 0;
}

/* A string at c->p (the opening quote); its decoded UTF-8 goes to `out` unless NULL. Sets *escaped when the
   string held an escape. 0 on success, -1 when the file must be read the slow way. */
static int read_string(Reader *r, Cursor *c, Buf *out, int *escaped) {
    c->p++;
    for (;;) {
        const unsigned char *run = c->p;
        c->p = plain_run(c->p, c->end);
        if (out && c->p > run && put(r, out, run, c->p - run)) return -1;
        if (c->p >= c->end) return -1;
        unsigned char ch = *c->p;
        if (ch == '"') {
            c->p++;
            return 0;
        }
        if (ch < 0x20) return -1;
        if (ch >= 0x80) {
            int n = utf8_sequence(c->p, c->end);
            if (!n) return -1;
            if (out && put(r, out, c->p, n)) return -1;
            c->p += n;
            continue;
        }
        /* a backslash */
        if (escaped) *escaped = 1;
        if (c->end - c->p < 2) return -1;
        unsigned char e = c->p[1];
        char simple;
        switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': simple = 0; break;
        default: return -1;
        }
        if (e != 'u') {
            if (out && put(r, out, &simple, 1)) return -1;
            c->p += 2;
            continue;
        }
        unsigned cp;
        if (c->end - c->p < 6 || hex4(c->p + 2, &cp)) return -1;
        c->p += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return -1; /* a lone low surrogate */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned low;
            if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' || hex4(c->p + 2, &low)) return -1;
            if (low < 0xDC00 || low > 0xDFFF) return -1;
            c->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        unsigned char utf8[4];
        size_t n;
        if (cp < 0x80) {
            utf8[0] = (unsigned char)cp;
            n = 1;
        } else if (cp < 0x800) {
            utf8[0] = 0xC0 | (cp >> 6);
            utf8[1] = 0x80 | (cp & 0x3F);
            n = 2;
        } else if (cp < 0x10000) {
            utf8[0] = 0xE0 | (cp >> 12);
            utf8[1] = 0x80 | ((cp >> 6) & 0x3F);
            utf8[2] = 0x80 | (cp & 0x3F);
            n = 3;
        } else {
            utf8[0] = 0xF0 | (cp >> 18);
            utf8[1] = 0x80 | ((cp >> 12) & 0x3F);
            utf8[2] = 0x80 | ((cp >> 6) & 0x3F);
            utf8[3] = 0x80 | (cp & 0x3F);
            n = 4;
        }
        if (out && put(r, out, utf8, n)) return -1;
    }
}

/* A number at c->p: its kind, and its value when it is an integer within int64. -1 (read the file the slow way)
   also for numbers a decoder may refuse: a float that may exceed the largest double (decimal exponent 308 or
   more, counted from above) and an integer of as many digits as Python's limit or more. */
static int read_number(const Reader *r, Cursor *c, int *kind, int64_t *value) {
    int negative = 0;
    if (*c->p == '-') {
        negative = 1;
        c->p++;
    }
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return -1;
    uint64_t magnitude = 0;
    int64_t digits = 0; /* of the integer part, 0 for "0" */
    if (*c->p == '0') {
        c->p++;
    } else {
        for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++, digits++) {
            unsigned d = *c->p - '0';
            magnitude = magnitude > (UINT64_MAX - d) / 10 ? UINT64_MAX : magnitude * 10 + d;
        }
    }
    int fraction = 0;
    if (c->p < c->end && *c->p == '.') {
        fraction = 1;
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return -1;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    }
    int64_t exponent = 0;
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        fraction = 1;
        c->p++;
        int exponent_negative = 0;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) exponent_negative = *c->p++ == '-';
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return -1;
        for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++)
            if (exponent < 100000) exponent = exponent * 10 + (*c->p - '0');
        if (exponent_negative) exponent = -exponent;
    }
    if (fraction) {
        /* below 10^(digits + exponent): with "0" before the point, below 10^exponent */
        if (digits + exponent > 308) return -1;
        *kind = KIND_FLOAT;
    } else if (r->max_int_digits > 0 && digits >= r->max_int_digits) {
        return -1;
    } else if (magnitude > (uint64_t)INT64_MAX + (uint64_t)negative) {
        *kind = KIND_BIGINT;
    } else {
        *kind = KIND_INT;
        *value = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    }
    return 0;
}

static int literal(Cursor *c, const char *word, size_t n) {
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n)) return -1;
    c->p += n;
    return 0;
}

/* At a list's opening bracket: 1 when an item follows, 0 for an empty list (now closed), -1 on an error. */
static inline int first_item(Cursor *c, char close) {
    c->p++;
    skip_ws(c);
    if (c->p >= c->end) return -1;
    if (*c->p != close) return 1;
    c->p++;
    return 0;
}

/* After a list's item: 1 when a comma leads to another, 0 at the closing bracket (now passed), -1 on an error. */
static inline int next_item(Cursor *c, char close) {
    skip_ws(c);
    if (c->p >= c->end) return -1;
    if (*c->p == ',') {
        c->p++;
        skip_ws(c);
        return 1;
    }
    if (*c->p != close) return -1;
    c->p++;
    return 0;
}

/* An object member's key and colon; *key / *length give the key's raw bytes, *escaped whether it held an escape. */
static inline int read_key(Reader *r, Cursor *c, const unsigned char **key, size_t *length, int *escaped) {
    if (c->p >= c->end || *c->p != '"') return -1;
    *key = c->p + 1;
    if (read_string(r, c, NULL, escaped)) return -1;
    *length = c->p - 1 - *key;
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':') return -1;
    c->p++;
    skip_ws(c);
    return 0;
}

/* Any value at c->p, checked and passed over; its kind (and integer value) when wanted. Strings go to `out`. */
static int read_value(Reader *r, Cursor *c, int depth, int *kind, int64_t *value, Buf *out) {
    int k;
    int64_t v = 0;
    if (c->p >= c->end) return -1;
    switch (*c->p) {
    case '"':
        if (read_string(r, c, out, NULL)) return -1;
        k = KIND_STRING;
        break;
    case 't':
        if (literal(c, "true", 4)) return -1;
        k = KIND_TRUE;
        break;
    case 'f':
        if (literal(c, "false", 5)) return -1;
        k = KIND_FALSE;
        break;
    case 'n':
        if (literal(c, "null", 4)) return -1;
        k = KIND_NULL;
        break;
    case '[': {
        if (depth >= MAX_DEPTH) return -1;
        int more = first_item(c, ']');
        for (int ignored_kind; more > 0; more = next_item(c, ']')) {
            int64_t ignored;
            if (read_value(r, c, depth + 1, &ignored_kind, &ignored, NULL)) return -1;
        }
        if (more < 0) return -1;
        k = KIND_ARRAY;
        break;
    }
    case '{': {
        if (depth >= MAX_DEPTH) return -1;
        int more = first_item(c, '}');
        for (int ignored_kind; more > 0; more = next_item(c, '}')) {
            const unsigned char *key;
            size_t length;
            int64_t ignored;
            if (read_key(r, c, &key, &length, NULL) || read_value(r, c, depth + 1, &ignored_kind, &ignored, NULL))
                return -1;
        }
        if (more < 0) return -1;
        k = KIND_OBJECT;
        break;
    }
    default:
        if (*c->p != '-' && (*c->p < '0' || *c->p > '9')) return -1;
        if (read_number(r, c, &k, &v)) return -1;
    }
    *kind = k;
    *value = v;
    return 0;
}

/* Equal bytes, 8 at a time (keys are short: a call to memcmp costs more than the comparison). */
static inline int same_bytes(const char *a, const unsigned char *b, size_t n) {
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return 0;
    }
    while (n--)
        if ((unsigned char)*a++ != *b++) return 0;
    return 1;
}

static inline int field_of(const Reader *r, const unsigned char *key, size_t n) {
    if (n > MAX_KEY) return -1;
    for (const int8_t *f = r->by_length[n]; *f >= 0; f++)
        if (same_bytes(r->names[*f], key, n)) return *f;
    return -1;
}

/* Zeros up to `records` integers. */
static int pad_ints(Reader *r, Column *col, int64_t records) {
    size_t size = (size_t)records * 8;
    if (col->ints.len >= size) return 0;
    if (buf_grow(&col->ints, size - col->ints.len)) {
        r->out_of_memory = 1;
        return -1;
    }
    memset(col->ints.data + col->ints.len, 0, size - col->ints.len);
    col->ints.len = size;
    return 0;
}

/* Append one record whose fields are all absent (yet). */
static int new_record(Reader *r, Cursor *c) {
    uint8_t absent = KIND_ABSENT;
    int64_t start = c->p - c->begin;
    for (int f = 0; f < r->count; f++) {
        Column *col = &r->columns[f];
        int32_t offset = (int32_t)col->chars.len;
        if (col->chars.len > INT32_MAX) return -1; /* too much text for int32 offsets: read the slow way */
        if (put(r, &col->kinds, &absent, 1) || put(r, &col->offsets, &offset, 4)) return -1;
    }
    return put(r, &r->starts, &start, 8);
}

/* One array element at c->p: an object's requested fields go to the columns. */
static int read_record(Reader *r, Cursor *c) {
    if (c->p >= c->end || new_record(r, c)) return -1;
    int64_t index = r->records;
    if (*c->p != '{') {
        int ignored_kind;
        int64_t ignored;
        if (read_value(r, c, 1, &ignored_kind, &ignored, NULL)) return -1;
    } else {
        unsigned char seen[MAX_FIELDS] = {0};
        int more = first_item(c, '}');
        for (; more > 0; more = next_item(c, '}')) {
            const unsigned char *key;
            size_t length;
            int escaped = 0, kind;
            int64_t value;
            if (read_key(r, c, &key, &length, &escaped)) return -1;
            if (escaped) return -1; /* an escaped key might name a field: read the slow way */
            int f = field_of(r, key, length);
            if (f < 0) {
                if (read_value(r, c, 2, &kind, &value, NULL)) return -1;
                continue;
            }
            if (seen[f]) return -1; /* a field given twice: read the slow way */
            seen[f] = 1;
            Column *col = &r->columns[f];
            if (read_value(r, c, 2, &kind, &value, &col->chars)) return -1;
            if (col->chars.len > INT32_MAX) return -1;
            ((uint8_t *)col->kinds.data)[index] = (uint8_t)kind;
            if (kind == KIND_INT) {
                if (pad_ints(r, col, index + 1)) return -1;
                ((int64_t *)col->ints.data)[index] = value;
            }
        }
        if (more < 0) return -1;
    }
    int64_t end = c->p - c->begin;
    if (put(r, &r->ends, &end, 8)) return -1;
    r->records++;
    return 0;
}

/* One file; on failure the columns are rolled back to where they were. Returns its records or -1. */
static int64_t read_file(Reader *r, const unsigned char *data, size_t size) {
    size_t lengths[MAX_FIELDS][4];
    for (int f = 0; f < r->count; f++) {
        Column *col = &r->columns[f];
        lengths[f][0] = col->kinds.len;
        lengths[f][1] = col->ints.len;
        lengths[f][2] = col->offsets.len;
        lengths[f][3] = col->chars.len;
    }
    size_t starts = r->starts.len, ends = r->ends.len;
    int64_t records = r->records;
    Cursor c = {data, data + size, data};
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '[') goto slow;
    int more = first_item(&c, ']');
    for (; more > 0; more = next_item(&c, ']'))
        if (read_record(r, &c)) goto slow;
    if (more < 0) goto slow;
    skip_ws(&c);
    if (c.p != c.end) goto slow;
    return r->records - records;
slow:
    for (int f = 0; f < r->count; f++) {
        Column *col = &r->columns[f];
        col->kinds.len = lengths[f][0];
        col->ints.len = lengths[f][1];
        col->offsets.len = lengths[f][2];
        col->chars.len = lengths[f][3];
    }
    r->starts.len = starts;
    r->ends.len = ends;
    r->records = records;
    return -1;
}

static void reader_free(Reader *r) {
    for (int f = 0; f < r->count; f++) {
        free(r->columns[f].kinds.data);
        free(r->columns[f].ints.data);
        free(r->columns[f].offsets.data);
        free(r->columns[f].chars.data);
    }
    free(r->starts.data);
    free(r->ends.data);
}

/* A read-only buffer that owns a Buf's memory (handed over, not copied). */
typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t len;
} Block;

static void block_dealloc(Block *self) {
    free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int block_getbuffer(Block *self, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)self, self->data ? self->data : "", self->len, 1, flags);
}

static PyBufferProcs block_as_buffer = {(getbufferproc)block_getbuffer, NULL};

static PyTypeObject BlockType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_export_reader.Block",
    .tp_basicsize = sizeof(Block),
    .tp_dealloc = (destructor)block_dealloc,
    .tp_as_buffer = &block_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Read-only memory of one output column (buffer protocol).",
};

static PyObject *block_of(Buf *b) {
    Block *block = PyObject_New(Block, &BlockType);
    if (!block) return NULL;
    block->data = b->data;
    block->len = (Py_ssize_t)b->len;
    b->data = NULL; /* the block frees it */
    b->len = b->cap = 0;
    return (PyObject *)block;
}

PyDoc_STRVAR(read_exports_doc,
    "read_exports(files, fields) -> (per_file_records, starts, ends, columns)\n\n"
    "per_file_records: bytes of int64, one per file, -1 for a file to decode the slow way (its records are\n"
    "left out). starts / ends: int64 per record, its byte span in its file. columns: one tuple per field,\n"
    "(kinds: uint8 per record, ints: int64 per record or empty when no record holds an integer there,\n"
    "offsets: int32 per record + 1, chars: UTF-8).\n"
    "All but per_file_records are read-only buffers (buffer protocol) that own their memory.");

static PyObject *read_exports(PyObject *self, PyObject *args) {
    PyObject *files_arg, *fields_arg;
    if (!PyArg_ParseTuple(args, "OO", &files_arg, &fields_arg)) return NULL;
    PyObject *files = PySequence_Fast(files_arg, "files must be a sequence of bytes-like objects");
    if (!files) return NULL;
    PyObject *fields = PySequence_Tuple(fields_arg); /* our own: its names outlive the released GIL */
    if (!fields) {
        Py_DECREF(files);
        return NULL;
    }
    Py_ssize_t n_files = PySequence_Fast_GET_SIZE(files), n_fields = PySequence_Fast_GET_SIZE(fields);
    PyObject *result = NULL;
    Py_buffer *views = NULL;
    Py_ssize_t n_views = 0;
    int64_t *per_file = NULL;
    Reader r;
    memset(&r, 0, sizeof r);
    if (n_fields > MAX_FIELDS) {
        PyErr_Format(PyExc_ValueError, "at most %d fields", MAX_FIELDS);
        goto done;
    }
    PyObject *limit = PySys_GetObject("get_int_max_str_digits"); /* borrowed */
    PyObject *digits = limit ? PyObject_CallNoArgs(limit) : NULL;
    if (!digits) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "sys.get_int_max_str_digits is missing");
        goto done;
    }
    r.max_int_digits = PyLong_AsLongLong(digits);
    Py_DECREF(digits);
    if (r.max_int_digits == -1 && PyErr_Occurred()) goto done;
    r.count = (int)n_fields;
    memset(r.by_length, -1, sizeof r.by_length);
    for (Py_ssize_t f = 0; f < n_fields; f++) {
        Py_ssize_t length;
        const char *name = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(fields, f), &length);
        if (!name) goto done;
        if (length > MAX_KEY) {
            PyErr_Format(PyExc_ValueError, "field names are at most %d bytes", MAX_KEY);
            goto done;
        }
        r.names[f] = name;
        r.lengths[f] = (size_t)length;
        int8_t *slot = r.by_length[length];
        while (*slot >= 0) slot++;
        *slot = (int8_t)f;
    }
    views = PyMem_Calloc(n_files ? n_files : 1, sizeof(Py_buffer));
    per_file = PyMem_Calloc(n_files ? n_files : 1, sizeof(int64_t));
    if (!views || !per_file) {
        PyErr_NoMemory();
        goto done;
    }
    for (; n_views < n_files; n_views++)
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(files, n_views), &views[n_views], PyBUF_SIMPLE)) goto done;

    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_files && !r.out_of_memory; i++)
        per_file[i] = read_file(&r, views[i].buf, (size_t)views[i].len);
    for (int f = 0; f < r.count && !r.out_of_memory; f++) {
        int32_t offset = (int32_t)r.columns[f].chars.len;
        put(&r, &r.columns[f].offsets, &offset, 4);
        if (r.columns[f].ints.len) pad_ints(&r, &r.columns[f], r.records);
    }
    Py_END_ALLOW_THREADS

    if (r.out_of_memory) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *columns = PyTuple_New(r.count);
    if (!columns) goto done;
    for (int f = 0; f < r.count; f++) {
        Column *col = &r.columns[f];
        PyObject *column = Py_BuildValue(
            "(NNNN)", block_of(&col->kinds), block_of(&col->ints), block_of(&col->offsets), block_of(&col->chars));
        if (!column) {
            Py_DECREF(columns);
            goto done;
        }
        PyTuple_SET_ITEM(columns, f, column);
    }
    result = Py_BuildValue(
        "(y#NNN)", (const char *)per_file, (Py_ssize_t)(n_files * sizeof(int64_t)), block_of(&r.starts),
        block_of(&r.ends), columns);
done:
    for (Py_ssize_t i = 0; i < n_views; i++) PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    PyMem_Free(per_file);
    reader_free(&r);
    Py_DECREF(files);
    Py_DECREF(fields);
    return result;
}

static PyMethodDef methods[] = {
    {"read_exports", read_exports, METH_VARARGS, read_exports_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_export_reader", "Spotify export files into typed columns (see read_exports).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__export_reader(void) {
    init_tables();
    if (PyType_Ready(&BlockType) < 0) return NULL;
    return PyModule_Create(&module);
}
