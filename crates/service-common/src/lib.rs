//! placeholder until the first service lands
