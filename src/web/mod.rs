//! web (work in progress).
