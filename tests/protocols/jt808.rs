//! jt808: vectors and socket tests (to be written).
