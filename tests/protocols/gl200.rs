//! gl200: vectors and socket tests (to be written).
