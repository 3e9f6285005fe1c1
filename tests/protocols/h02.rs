//! h02: vectors and socket tests (to be written).
