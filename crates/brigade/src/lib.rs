//! brigade
