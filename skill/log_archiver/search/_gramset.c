/* The inner loops of search indexing (log_archiver.search.grams), compiled when the
 * package is installed. Each loop runs without the interpreter lock.
 *
 * A gram is three consecutive bytes with the top bit of each dropped (21 bits). A "seen"
 * map is a writable buffer of 2**21 bits (256 KiB, which stays in a core's cache), gram g
 * being bit g % 8 of byte g / 8.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define GRAM_BITS 21
#define GRAMS ((Py_ssize_t)1 << GRAM_BITS)
#define MAP_BYTES (GRAMS / 8)
#define MARK(map, gram) ((map)[(gram) >> 3] |= (uint8_t)(1u << ((gram) & 7)))

static int seen_map(PyObject *object, Py_buffer *view) {
    if (PyObject_GetBuffer(object, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len != MAP_BYTES) {
        PyErr_Format(PyExc_ValueError, "a seen map holds %zd bytes, not %zd", MAP_BYTES,
                     view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* mark_text(seen, text, start, stop): marks every gram g that begins at an
 * offset from start up to stop in text (which holds the two bytes after stop - 1). */
static PyObject *mark_text(PyObject *self, PyObject *args) {
    PyObject *seen_object;
    Py_buffer seen, text;
    Py_ssize_t start, stop;
    if (!PyArg_ParseTuple(args, "Oy*nn", &seen_object, &text, &start, &stop))
        return NULL;
    if (start < 0 || stop < start || (stop > start && stop > text.len - 2)) {
        PyErr_Format(PyExc_ValueError, "grams from %zd to %zd do not lie in %zd bytes",
                     start, stop, text.len);
        PyBuffer_Release(&text);
        return NULL;
    }
    if (seen_map(seen_object, &seen) < 0) {
        PyBuffer_Release(&text);
        return NULL;
    }
    uint8_t *marks = seen.buf;
    const uint8_t *bytes = text.buf;
    if (stop > start) {
        Py_BEGIN_ALLOW_THREADS
        uint32_t gram = ((uint32_t)(bytes[start] & 0x7F) << 7) | (bytes[start + 1] & 0x7F);
        for (Py_ssize_t at = start; at < stop; at++) {
            gram = ((gram << 7) | (bytes[at + 2] & 0x7F)) & (GRAMS - 1);
            MARK(marks, gram);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&seen);
    PyBuffer_Release(&text);
    Py_RETURN_NONE;
}

/* mark_ids(seen, ids): marks every gram g of ids (native uint32 values). */
static PyObject *mark_ids(PyObject *self, PyObject *args) {
    PyObject *seen_object;
    Py_buffer seen, ids;
    if (!PyArg_ParseTuple(args, "Oy*", &seen_object, &ids))
        return NULL;
    if (ids.len % 4) {
        PyErr_Format(PyExc_ValueError, "%zd bytes are not whole 4-byte grams", ids.len);
        PyBuffer_Release(&ids);
        return NULL;
    }
    if (seen_map(seen_object, &seen) < 0) {
        PyBuffer_Release(&ids);
        return NULL;
    }
    uint8_t *marks = seen.buf;
    const uint8_t *raw = ids.buf;
    Py_ssize_t count = ids.len / 4;
    int failed = 0;
    uint32_t bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t at = 0; at < count; at++) {
        uint32_t gram;
        memcpy(&gram, raw + 4 * at, 4);
        if (gram >= (uint32_t)GRAMS) {
            failed = 1;
            bad = gram;
            break;
        }
        MARK(marks, gram);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&seen);
    PyBuffer_Release(&ids);
    if (failed) {
        PyErr_Format(PyExc_ValueError, "%lu is not a gram (they are below %zd)",
                     (unsigned long)bad, GRAMS);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* collect(seen): the grams marked in seen, as sorted native uint32 values in bytes; seen
 * is all clear again after. A map has one user at a time (marking is not atomic); should
 * another change it between the two passes, only the grams returned are cleared and the
 * result holds no byte that was not written. */
static PyObject *collect(PyObject *self, PyObject *args) {
    PyObject *seen_object;
    Py_buffer seen;
    if (!PyArg_ParseTuple(args, "O", &seen_object))
        return NULL;
    if (seen_map(seen_object, &seen) < 0)
        return NULL;
    uint8_t *marks = seen.buf;
    Py_ssize_t found = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t at = 0; at < MAP_BYTES; at += 8) {
        uint64_t word;
        memcpy(&word, marks + at, 8);
        if (word)
            found += __builtin_popcountll(word);
    }
    Py_END_ALLOW_THREADS
    PyObject *result = PyBytes_FromStringAndSize(NULL, 4 * found);
    if (result == NULL) {
        PyBuffer_Release(&seen);
        return NULL;
    }
    uint8_t *start = (uint8_t *)PyBytes_AS_STRING(result), *out = start;
    uint8_t *full = start + 4 * found;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t at = 0; at < MAP_BYTES && out < full; at += 8) {
        uint64_t word;
        memcpy(&word, marks + at, 8);
        if (!word)
            continue;
        for (int byte = 0; byte < 8; byte++) {
            unsigned bits = marks[at + byte];
            while (bits && out < full) {
                unsigned low = bits & (0u - bits);
                uint32_t gram = (uint32_t)(8 * (at + byte) + __builtin_ctz(bits));
                memcpy(out, &gram, 4);
                out += 4;
                bits &= ~low;
            }
            marks[at + byte] = (uint8_t)bits;  /* (what is left was not returned) */
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&seen);
    if (out < full && _PyBytes_Resize(&result, out - start) < 0)
        return NULL;
    return result;
}

/* newlines(data): how many bytes of data are b"\n". */
static PyObject *newlines(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data))
        return NULL;
    Py_ssize_t count = 0;
    const char *at = data.buf, *end = (const char *)data.buf + data.len;
    Py_BEGIN_ALLOW_THREADS
    while (at < end && (at = memchr(at, '\n', end - at)) != NULL) {
        count++;
        at++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(count);
}

static PyMethodDef methods[] = {
    {"mark_text", mark_text, METH_VARARGS, "Mark the grams beginning from start to stop."},
    {"mark_ids", mark_ids, METH_VARARGS, "Mark the grams of a buffer of uint32 values."},
    {"collect", collect, METH_VARARGS, "The marked grams, sorted; the map is cleared."},
    {"newlines", newlines, METH_VARARGS, "The number of newline bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_gramset", "Inner loops of search indexing.", -1, methods,
};

PyMODINIT_FUNC PyInit__gramset(void) {
    PyObject *made = PyModule_Create(&module);
    if (made != NULL && (PyModule_AddIntConstant(made, "GRAM_BITS", GRAM_BITS) < 0
                         || PyModule_AddIntConstant(made, "MAP_BYTES", MAP_BYTES) < 0)) {
        Py_DECREF(made);
        return NULL;
    }
    return made;
}
