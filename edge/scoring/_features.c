/*
 * edge.scoring._features: the native twin of edge/scoring/features.py (_featurize_py).
 *
 * It must give the SAME BITS as the Python reference on every input and platform:
 *   - everything is counted in integers;
 *   - the only floating-point operations are (double)count / (double)total, rounded
 *     once to float, and integer -> float conversions of small counts; IEEE-754
 *     division and rounding are exact-rounded on x86-64 and AArch64 alike, and there is
 *     nothing here a compiler could contract into an FMA;
 *   - hashes use uint32_t arithmetic (wrap-around defined by C99).
 * The layout (opcode slots, named selectors, bucket sizes, vector length) is passed in
 * once by features.py through configure(); this file holds none of it.
 *
 * API (all called from features.py):
 *   configure(op_slot, defined, raw_ops, known, bigram_bits, selector_bits,
 *             n_scalars, n_features) -> None
 *   featurize_into(codes: sequence of bytes-like, out: writable float32 buffer of
 *                  len(codes) * n_features) -> None
 *   metadata_len(code: bytes-like) -> int   (length of the CBOR trailer, 0 if none)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RAW 64
#define MAX_KNOWN 256
#define CBOR_MAX_DEPTH 4

static int g_configured = 0;
static uint8_t g_op_slot[256];
static uint8_t g_defined[256];
static uint8_t g_raw_ops[MAX_RAW];
static Py_ssize_t g_n_raw = 0;
static uint32_t g_known[MAX_KNOWN];
static Py_ssize_t g_n_known = 0;
static int g_bigram_bits = 8;
static int g_selector_bits = 6;
static Py_ssize_t g_n_scalars = 6;
static Py_ssize_t g_n_features = 0;
static Py_ssize_t g_off_raw, g_off_ratio, g_off_bigram, g_off_selbucket, g_off_known;
static int g_undefined_slot = 0;

#define BIGRAM_MULT 2654435761u
#define SELECTOR_MULT 2246822519u

/* End offset of the CBOR item at pos (RFC 8949 subset, as _cbor_item_end), or -1. */
static Py_ssize_t cbor_item_end(const uint8_t *buf, Py_ssize_t pos, Py_ssize_t end, int depth)
{
    if (pos >= end || depth > CBOR_MAX_DEPTH)
        return -1;
    uint8_t ib = buf[pos];
    int major = ib >> 5, info = ib & 0x1f;
    uint64_t arg;
    pos += 1;
    if (info < 24) {
        arg = (uint64_t)info;
    } else if (info <= 27) {
        Py_ssize_t width = (Py_ssize_t)1 << (info - 24);
        if (pos + width > end)
            return -1;
        arg = 0;
        for (Py_ssize_t k = 0; k < width; k++)
            arg = (arg << 8) | buf[pos + k];
        pos += width;
    } else {
        return -1;
    }
    if (major == 0 || major == 1)
        return pos;
    if (major == 2 || major == 3) {
        if (arg > (uint64_t)(end - pos))
            return -1;
        return pos + (Py_ssize_t)arg;
    }
    if (major == 4 || major == 5) {
        uint64_t rem = (uint64_t)(end - pos);
        if (arg > rem)
            return -1;
        uint64_t items = arg * (major == 5 ? 2u : 1u);
        if (items > rem)
            return -1;
        for (uint64_t k = 0; k < items; k++) {
            pos = cbor_item_end(buf, pos, end, depth + 1);
            if (pos < 0)
                return -1;
        }
        return pos;
    }
    if (major == 7 && info >= 20 && info <= 23)
        return pos;
    return -1;
}

/* Length of the Solidity CBOR metadata trailer (map + 2 length bytes), or 0. */
static Py_ssize_t metadata_len_raw(const uint8_t *code, Py_ssize_t n)
{
    if (n < 3)
        return 0;
    Py_ssize_t length = ((Py_ssize_t)code[n - 2] << 8) | code[n - 1];
    if (length == 0 || length + 2 > n)
        return 0;
    Py_ssize_t start = n - 2 - length;
    if ((code[start] >> 5) != 5)
        return 0;
    if (cbor_item_end(code, start, n - 2, 0) != n - 2)
        return 0;
    return length + 2;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

#define SEL_STACK 2048

/* Features of one code into out[0 .. g_n_features). Returns 0, or -1 on MemoryError. */
static int featurize_one(const uint8_t *code, Py_ssize_t n_all, float *out)
{
    uint32_t counts[256];
    uint32_t bigrams[1 << 12];
    uint32_t sel_stack[SEL_STACK];
    uint32_t *sels = sel_stack;
    Py_ssize_t sel_cap = SEL_STACK, n_sels = 0;
    const Py_ssize_t n = n_all - metadata_len_raw(code, n_all);
    const int nb = 1 << g_bigram_bits;
    const int bshift = 32 - g_bigram_bits;
    uint32_t push4_other = 0, truncated = 0, n_instr = 0;
    Py_ssize_t i = 0;
    int prev = -1;

    memset(counts, 0, sizeof counts);
    memset(bigrams, 0, sizeof(uint32_t) * (size_t)nb);
    if (n / 5 + 1 > SEL_STACK) {
        sel_cap = n / 5 + 1;
        sels = (uint32_t *)malloc(sizeof(uint32_t) * (size_t)sel_cap);
        if (sels == NULL)
            return -1;
    }

    while (i < n) {
        const uint8_t op = code[i];
        counts[op]++;
        n_instr++;
        if (prev >= 0)
            bigrams[((((uint32_t)prev << 8) | op) * BIGRAM_MULT) >> bshift]++;
        prev = op;
        if (op >= 0x60 && op <= 0x7f) {
            const Py_ssize_t width = op - 0x5f;
            if (i + 1 + width > n) {
                truncated = 1;
                break;
            }
            if (op == 0x63) {
                const Py_ssize_t nxt = i + 5;
                const int follow = nxt < n ? code[nxt] : -1;
                if (follow == 0x14 || follow == 0x11 || follow == 0x10 ||
                    (follow == 0x81 && nxt + 1 < n && code[nxt + 1] == 0x14)) {
                    sels[n_sels++] = ((uint32_t)code[i + 1] << 24) | ((uint32_t)code[i + 2] << 16) |
                                     ((uint32_t)code[i + 3] << 8) | (uint32_t)code[i + 4];
                } else {
                    push4_other++;
                }
            }
            i += 1 + width;
        } else {
            i += 1;
        }
    }

    memset(out, 0, sizeof(float) * (size_t)g_n_features);
    uint32_t undefined = 0;
    for (int op = 0; op < 256; op++)
        if (!g_defined[op])
            undefined += counts[op];

    Py_ssize_t n_distinct = 0;
    if (n_sels > 0) {
        qsort(sels, (size_t)n_sels, sizeof(uint32_t), cmp_u32);
        for (Py_ssize_t k = 0; k < n_sels; k++) {
            if (k > 0 && sels[k] == sels[k - 1])
                continue;
            const uint32_t s = sels[k];
            n_distinct++;
            out[g_off_selbucket + ((s * SELECTOR_MULT) >> (32 - g_selector_bits))] += 1.0f;
            for (Py_ssize_t q = 0; q < g_n_known; q++) {
                if (g_known[q] == s) {
                    out[g_off_known + q] = 1.0f;
                    break;
                }
            }
        }
    }
    if (sels != sel_stack)
        free(sels);

    out[0] = (float)n;
    out[1] = (float)n_instr;
    out[2] = (float)n_distinct;
    out[3] = (float)push4_other;
    out[4] = (float)truncated;
    out[5] = (float)undefined;
    for (Py_ssize_t k = 0; k < g_n_raw; k++)
        out[g_off_raw + k] = (float)counts[g_raw_ops[k]];
    if (n_instr) {
        const double total = (double)n_instr;
        for (int op = 0; op < 256; op++)
            if (counts[op] && g_defined[op])
                out[g_off_ratio + g_op_slot[op]] = (float)((double)counts[op] / total);
        if (undefined)
            out[g_off_ratio + g_undefined_slot] = (float)((double)undefined / total);
    }
    if (n_instr > 1) {
        const double pairs = (double)(n_instr - 1);
        for (int k = 0; k < nb; k++)
            if (bigrams[k])
                out[g_off_bigram + k] = (float)((double)bigrams[k] / pairs);
    }
    return 0;
}

static PyObject *py_configure(PyObject *self, PyObject *args)
{
    Py_buffer op_slot, defined, raw_ops, known;
    int bigram_bits, selector_bits;
    Py_ssize_t n_scalars, n_features;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*iinn", &op_slot, &defined, &raw_ops, &known,
                          &bigram_bits, &selector_bits, &n_scalars, &n_features))
        return NULL;
    PyObject *result = NULL;
    if (op_slot.len != 256 || defined.len != 256 || raw_ops.len > MAX_RAW ||
        known.len % 4 != 0 || known.len / 4 > MAX_KNOWN || bigram_bits < 1 ||
        bigram_bits > 12 || selector_bits < 1 || selector_bits > 16 || n_scalars != 6) {
        PyErr_SetString(PyExc_ValueError, "_features.configure: table sizes out of range");
        goto done;
    }
    memcpy(g_op_slot, op_slot.buf, 256);
    memcpy(g_defined, defined.buf, 256);
    memcpy(g_raw_ops, raw_ops.buf, (size_t)raw_ops.len);
    g_n_raw = raw_ops.len;
    g_n_known = known.len / 4;
    for (Py_ssize_t q = 0; q < g_n_known; q++) {
        const uint8_t *b = (const uint8_t *)known.buf + 4 * q;
        g_known[q] = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    }
    int n_defined = 0;
    for (int op = 0; op < 256; op++)
        n_defined += g_defined[op] ? 1 : 0;
    g_undefined_slot = n_defined;
    g_bigram_bits = bigram_bits;
    g_selector_bits = selector_bits;
    g_n_scalars = n_scalars;
    g_off_raw = n_scalars;
    g_off_ratio = g_off_raw + g_n_raw;
    g_off_bigram = g_off_ratio + n_defined + 1;
    g_off_selbucket = g_off_bigram + ((Py_ssize_t)1 << bigram_bits);
    g_off_known = g_off_selbucket + ((Py_ssize_t)1 << selector_bits);
    if (g_off_known + g_n_known != n_features) {
        PyErr_SetString(PyExc_ValueError, "_features.configure: n_features does not match the layout");
        goto done;
    }
    g_n_features = n_features;
    g_configured = 1;
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&op_slot);
    PyBuffer_Release(&defined);
    PyBuffer_Release(&raw_ops);
    PyBuffer_Release(&known);
    return result;
}

static PyObject *py_featurize_into(PyObject *self, PyObject *args)
{
    PyObject *codes, *out_obj;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &codes, &out_obj))
        return NULL;
    if (!g_configured) {
        PyErr_SetString(PyExc_RuntimeError, "_features.configure() was not called");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(codes, "codes must be a sequence of bytes");
    if (seq == NULL)
        return NULL;
    Py_buffer out;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *result = NULL;
    if (out.len != (Py_ssize_t)sizeof(float) * n * g_n_features) {
        PyErr_SetString(PyExc_ValueError, "out must hold len(codes) * N_FEATURES float32");
        goto done;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    float *dst = (float *)out.buf;
    for (Py_ssize_t r = 0; r < n; r++) {
        PyObject *item = items[r];
        int rc;
        if (PyBytes_Check(item)) {
            rc = featurize_one((const uint8_t *)PyBytes_AS_STRING(item), PyBytes_GET_SIZE(item),
                               dst + r * g_n_features);
        } else {
            Py_buffer b;
            if (PyObject_GetBuffer(item, &b, PyBUF_C_CONTIGUOUS) < 0) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "row %zd is %.100s, not bytes-like", r,
                             Py_TYPE(item)->tp_name);
                goto done;
            }
            if (b.itemsize != 1) {
                PyBuffer_Release(&b);
                PyErr_Format(PyExc_TypeError, "row %zd is not a byte buffer", r);
                goto done;
            }
            rc = featurize_one((const uint8_t *)b.buf, b.len, dst + r * g_n_features);
            PyBuffer_Release(&b);
        }
        if (rc < 0) {
            PyErr_NoMemory();
            goto done;
        }
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&out);
    Py_DECREF(seq);
    return result;
}

static PyObject *py_metadata_len(PyObject *self, PyObject *args)
{
    Py_buffer b;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*", &b))
        return NULL;
    Py_ssize_t m = metadata_len_raw((const uint8_t *)b.buf, b.len);
    PyBuffer_Release(&b);
    return PyLong_FromSsize_t(m);
}

static PyMethodDef methods[] = {
    {"configure", py_configure, METH_VARARGS, "Set the feature layout tables (called by features.py)."},
    {"featurize_into", py_featurize_into, METH_VARARGS,
     "featurize_into(codes, out): write len(codes) x N_FEATURES float32 into out."},
    {"metadata_len", py_metadata_len, METH_VARARGS,
     "metadata_len(code) -> length of the Solidity CBOR metadata trailer, 0 if none."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_features", "Native EVM bytecode featurizer (twin of features.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__features(void) { return PyModule_Create(&module); }
