//! Every protocol trackgate speaks, one folder each. A protocol owns its
//! bytes (framing, parsing, reply bytes, field mapping) and nothing else.

pub mod teltonika;
