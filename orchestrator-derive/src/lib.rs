//! Placeholder; replaced by the real macro.
#![allow(missing_docs)]
use proc_macro::TokenStream;

#[proc_macro_attribute]
pub fn managed_operation(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
