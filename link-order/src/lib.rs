//! Lays out the shipped proxy's code in the order it runs, so that the pages
//! of the binary a running proxy touches are few. The kernel maps a binary's
//! code in 64 KiB blocks around each page touched; scattered over the whole
//! binary, the few thousand functions a proxy runs keep most of it resident
//! (bench/README.md, "Link order").
//!
//! `collect` turns callgrind profiles (and perf samples) of the proxy into
//! an order of function names (`proxy/link-order.txt`); `link` is the linker wrapper that
//! finds those functions among one link's objects and hands them to LLD.

pub mod callgrind;
pub mod collect;
pub mod key;
pub mod link;
pub mod order;
pub mod perf;
pub mod steady;
