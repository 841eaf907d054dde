//! Runtime servers: `add server`, `del server`, `set server ... addr`, runtime limits. Changes are
//! an [`overlay::Overlay`] on the configuration text, applied by every load, so the balancers see
//! a new server set the way they see a reload (one atomic snapshot swap) and nothing is lost
//! across a reload. The daemon side (`daemon::dynamic`) runs them; this module is pure.

pub mod keywords;
pub mod overlay;

pub use keywords::{ServerFields, parse_add};
pub use overlay::Overlay;
