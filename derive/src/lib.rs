//! Derive macros of ticksync game state (re-exported by `ticksync_protocol`):
//!
//! - `#[derive(State)]` on a struct with named fields: an entity kind, the lobby or
//!   private state, or the input (`ticksync_protocol::schema::Fields`);
//! - `#[derive(StateEnum)]` on a fieldless enum: a small-enum field type
//!   (`ticksync_protocol::schema::FieldValue`);
//! - `#[derive(Messages)]` on an enum whose variants have named fields (or none): one
//!   message or event type per variant (`ticksync_protocol::schema::Messages`).
//!
//! Field attributes, one `#[state(...)]` per field: `range = MIN..=MAX`,
//! `precision = STEP`, `x = MIN..=MAX`, `y = MIN..=MAX` (a `Vec2`'s axes),
//! `angle_bits = N`, `max_len = N`, `varint` with an optional `max = N` (a `u8`, `u16`
//! or `u32` sent as var4 groups, small values in few bits), `owner_only`. Struct attribute:
//! `#[state(name = "...")]` (the kind's name; the struct's name by default). Mistakes
//! the macro can see (an unknown attribute, an `f32` without range and precision, a
//! range with min not below max...) are compile errors; the rest is reported by
//! `Schema::validate` at start-up. The generated code names the `ticksync_protocol`
//! crate, which must be a dependency.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::quote;
use syn::parse::ParseStream;
use syn::{Data, DeriveInput, Error, Fields, Ident, Lit, LitStr, Token, Type};

/// Derives `ticksync_protocol::schema::Fields` for a struct with named fields.
#[proc_macro_derive(State, attributes(state))]
pub fn derive_state(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    expand_state(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// Derives `ticksync_protocol::schema::FieldValue` for a fieldless enum.
#[proc_macro_derive(StateEnum)]
pub fn derive_state_enum(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    expand_state_enum(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// Derives `ticksync_protocol::schema::Messages` for an enum of message or event types.
#[proc_macro_derive(Messages, attributes(state))]
pub fn derive_messages(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    expand_messages(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// What one field's `#[state(...)]` says.
#[derive(Default)]
struct Attrs {
    range: Option<(f64, f64)>,
    x: Option<(f64, f64)>,
    y: Option<(f64, f64)>,
    precision: Option<f64>,
    angle_bits: Option<u8>,
    max_len: Option<u16>,
    varint: bool,
    max: Option<u32>,
    owner_only: bool,
}

fn parse_number(input: ParseStream<'_>) -> syn::Result<f64> {
    let negative = input.parse::<Option<Token![-]>>()?.is_some();
    let lit: Lit = input.parse()?;
    let digits = match &lit {
        Lit::Float(f) => f.base10_digits().to_owned(),
        Lit::Int(i) => i.base10_digits().to_owned(),
        _ => return Err(Error::new(lit.span(), "expected a number")),
    };
    let v: f64 = digits
        .parse()
        .map_err(|_| Error::new(lit.span(), "expected a number"))?;
    Ok(if negative { -v } else { v })
}

fn parse_range(input: ParseStream<'_>, span: Span) -> syn::Result<(f64, f64)> {
    let min = parse_number(input)?;
    input.parse::<Token![..=]>()?;
    let max = parse_number(input)?;
    if min >= max {
        return Err(Error::new(
            span,
            format!("range {min}..={max}: min must be below max"),
        ));
    }
    Ok((min, max))
}

fn parse_field_attrs(attrs: &[syn::Attribute]) -> syn::Result<Attrs> {
    let mut out = Attrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("state")) {
        attr.parse_nested_meta(|meta| {
            let span = meta.path.span_of();
            let key = meta
                .path
                .get_ident()
                .map(Ident::to_string)
                .unwrap_or_default();
            match key.as_str() {
                "range" => out.range = Some(parse_range(meta.value()?, span)?),
                "x" => out.x = Some(parse_range(meta.value()?, span)?),
                "y" => out.y = Some(parse_range(meta.value()?, span)?),
                "precision" => {
                    let p = parse_number(meta.value()?)?;
                    if p <= 0.0 {
                        return Err(Error::new(span, format!("precision {p} must be above 0")));
                    }
                    out.precision = Some(p);
                }
                "angle_bits" => {
                    let n = parse_number(meta.value()?)?;
                    if !(1.0..=32.0).contains(&n) || n.fract() != 0.0 {
                        return Err(Error::new(span, format!("angle_bits {n}: must be 1 to 32")));
                    }
                    out.angle_bits = Some(n as u8);
                }
                "max_len" => {
                    let n = parse_number(meta.value()?)?;
                    if !(1.0..=255.0).contains(&n) || n.fract() != 0.0 {
                        return Err(Error::new(span, format!("max_len {n}: must be 1 to 255")));
                    }
                    out.max_len = Some(n as u16);
                }
                "varint" => out.varint = true,
                "max" => {
                    let n = parse_number(meta.value()?)?;
                    if !(1.0..=f64::from(u32::MAX)).contains(&n) || n.fract() != 0.0 {
                        return Err(Error::new(
                            span,
                            format!("max {n}: must be a whole number from 1 to {}", u32::MAX),
                        ));
                    }
                    out.max = Some(n as u32);
                }
                "owner_only" => out.owner_only = true,
                _ => {
                    return Err(Error::new(
                        span,
                        format!(
                            "unknown attribute `{key}`: expected range, x, y, precision, \
                             angle_bits, max_len, varint, max or owner_only"
                        ),
                    ));
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

trait SpanOf {
    fn span_of(&self) -> Span;
}

impl SpanOf for syn::Path {
    fn span_of(&self) -> Span {
        self.segments
            .first()
            .map_or_else(Span::call_site, |s| s.ident.span())
    }
}

/// The last path segment of a type, e.g. `Vec2` for `glam::Vec2`.
fn type_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// Compile-time checks of the types the macro recognizes.
fn check_type(ty: &Type, a: &Attrs, span: Span) -> syn::Result<()> {
    let fail = |m: &str| Err(Error::new(span, m.to_owned()));
    let name = type_name(ty);
    if a.max.is_some() && !a.varint {
        return fail("`max = N` goes with `varint` (a fixed-width integer takes `range`)");
    }
    if a.varint {
        // A type the macro does not know (an alias, an enum) is checked at start-up.
        let top = match name.as_deref() {
            Some("u8") => Some(u32::from(u8::MAX)),
            Some("u16") => Some(u32::from(u16::MAX)),
            Some("u32") => Some(u32::MAX),
            Some(
                "i8" | "i16" | "i32" | "i64" | "u64" | "usize" | "isize" | "f32" | "f64" | "bool"
                | "Vec2" | "String" | "PlayerRef" | "Button",
            )
            | None => return fail("`varint` applies to u8, u16 or u32 fields"),
            Some(_) => None,
        };
        if a.range.is_some() || a.precision.is_some() {
            return fail("a `varint` takes `max = N`, not `range` or `precision` (it starts at 0)");
        }
        if let Some(max) = a.max.filter(|&m| top.is_some_and(|top| m > top)) {
            return Err(Error::new(
                span,
                format!("max {max} is above the type's {}", top.unwrap_or(u32::MAX)),
            ));
        }
    }
    match name.as_deref() {
        Some("f32") if a.angle_bits.is_none() && (a.range.is_none() || a.precision.is_none()) => {
            fail(
                "an f32 field needs `range = MIN..=MAX` and `precision = STEP`, or `angle_bits = N`",
            )
        }
        Some("Vec2")
            if a.precision.is_none() || (a.range.is_none() && (a.x.is_none() || a.y.is_none())) =>
        {
            fail(
                "a Vec2 field needs `range = MIN..=MAX` (or `x = ..` and `y = ..`) and `precision = STEP`",
            )
        }
        Some("String") if a.max_len.is_none() => fail("a String field needs `max_len = N`"),
        Some("f64" | "u64" | "i64" | "usize" | "isize") => {
            fail("not a state field type: use f32, or an integer of at most 32 bits")
        }
        _ => Ok(()),
    }
}

fn opt_pair(v: Option<(f64, f64)>) -> Tokens {
    match v {
        Some((a, b)) => quote!(::core::option::Option::Some((#a, #b))),
        None => quote!(::core::option::Option::None),
    }
}

fn opt<T: quote::ToTokens>(v: Option<T>) -> Tokens {
    match v {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

/// The declarations, writes and reads of a list of named fields.
struct FieldCode {
    declare: Vec<Tokens>,
    names: Vec<Ident>,
}

fn field_code(fields: &syn::FieldsNamed, row: &Tokens) -> syn::Result<FieldCode> {
    let mut declare = Vec::new();
    let mut names = Vec::new();
    for f in &fields.named {
        let Some(ident) = f.ident.clone() else {
            continue;
        };
        let a = parse_field_attrs(&f.attrs)?;
        check_type(&f.ty, &a, ident.span())?;
        let ty = &f.ty;
        let name = LitStr::new(&ident.to_string(), ident.span());
        let (range, x, y) = (opt_pair(a.range), opt_pair(a.x), opt_pair(a.y));
        let (precision, angle_bits, max_len) =
            (opt(a.precision), opt(a.angle_bits), opt(a.max_len));
        let (varint, max) = (a.varint, opt(a.max));
        let owner_only = a.owner_only;
        declare.push(quote! {
            ::ticksync_protocol::schema::declare_field::<#ty>(
                #row,
                #name,
                &::ticksync_protocol::schema::FieldAttrs {
                    range: #range,
                    x: #x,
                    y: #y,
                    precision: #precision,
                    angle_bits: #angle_bits,
                    max_len: #max_len,
                    varint: #varint,
                    max: #max,
                },
                #owner_only,
            )
        });
        names.push(ident);
    }
    Ok(FieldCode { declare, names })
}

fn struct_name(input: &DeriveInput) -> syn::Result<String> {
    let mut name = input.ident.to_string();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("state")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let s: LitStr = meta.value()?.parse()?;
                name = s.value();
                Ok(())
            } else {
                Err(meta.error("unknown attribute: expected `name = \"...\"`"))
            }
        })?;
    }
    Ok(name)
}

fn no_generics(input: &DeriveInput) -> syn::Result<()> {
    if input.generics.params.is_empty() {
        Ok(())
    } else {
        Err(Error::new_spanned(
            &input.generics,
            "state types cannot be generic",
        ))
    }
}

fn expand_state(input: &DeriveInput) -> syn::Result<Tokens> {
    no_generics(input)?;
    let Data::Struct(data) = &input.data else {
        return Err(Error::new(
            input.ident.span(),
            "#[derive(State)] is for structs with named fields; use #[derive(StateEnum)] for a \
             fieldless enum or #[derive(Messages)] for message and event types",
        ));
    };
    let fields = match &data.fields {
        Fields::Named(named) => named.clone(),
        Fields::Unit => syn::parse_quote!({}),
        Fields::Unnamed(_) => {
            return Err(Error::new(
                input.ident.span(),
                "#[derive(State)] needs named fields",
            ));
        }
    };
    let ident = &input.ident;
    let name = struct_name(input)?;
    let row = quote!(#name);
    let FieldCode { declare, names } = field_code(&fields, &row)?;
    let build = if matches!(data.fields, Fields::Unit) {
        quote!(#ident)
    } else {
        quote!(#ident { #( #names: ::ticksync_protocol::schema::FieldValue::read(r), )* })
    };
    Ok(quote! {
        impl ::ticksync_protocol::schema::Fields for #ident {
            const NAME: &'static str = #name;
            fn fields() -> ::core::result::Result<
                ::std::vec::Vec<::ticksync_protocol::schema::Field>,
                ::ticksync_protocol::schema::SchemaError,
            > {
                ::ticksync_protocol::schema::collect_fields(#name, [#(#declare),*])
            }
            fn write_fields(&self, w: &mut ::ticksync_protocol::state::RowWriter<'_>) {
                #( ::ticksync_protocol::schema::FieldValue::write(&self.#names, w); )*
                let _ = w;
            }
            fn read_fields(r: &mut ::ticksync_protocol::state::RowReader<'_>) -> Self {
                let _ = &r;
                #build
            }
        }
    })
}

fn expand_state_enum(input: &DeriveInput) -> syn::Result<Tokens> {
    no_generics(input)?;
    let Data::Enum(data) = &input.data else {
        return Err(Error::new(
            input.ident.span(),
            "#[derive(StateEnum)] is for fieldless enums",
        ));
    };
    if data.variants.is_empty() || data.variants.len() > 256 {
        return Err(Error::new(
            input.ident.span(),
            "a state enum needs 1 to 256 variants",
        ));
    }
    let mut idents = Vec::new();
    for v in &data.variants {
        if !matches!(v.fields, Fields::Unit) {
            return Err(Error::new(
                v.ident.span(),
                "a state enum's variants cannot have fields (message types: #[derive(Messages)])",
            ));
        }
        idents.push(v.ident.clone());
    }
    let ident = &input.ident;
    let names: Vec<String> = idents.iter().map(Ident::to_string).collect();
    let index: Vec<u32> = (0..idents.len() as u32).collect();
    let first = &idents[0];
    Ok(quote! {
        impl ::ticksync_protocol::schema::FieldValue for #ident {
            fn field_type(
                attrs: &::ticksync_protocol::schema::FieldAttrs,
            ) -> ::core::result::Result<::ticksync_protocol::schema::FieldType, ::std::string::String> {
                if *attrs != ::ticksync_protocol::schema::FieldAttrs::default() {
                    return ::core::result::Result::Err("an enum takes no range, precision or length".into());
                }
                ::core::result::Result::Ok(::ticksync_protocol::schema::FieldType::Enum {
                    variants: ::std::vec![#(::std::string::String::from(#names)),*],
                })
            }
            fn write(&self, w: &mut ::ticksync_protocol::state::RowWriter<'_>) {
                w.enum_index(match self { #( #ident::#idents => #index, )* });
            }
            fn read(r: &mut ::ticksync_protocol::state::RowReader<'_>) -> Self {
                match r.enum_index() {
                    #( #index => #ident::#idents, )*
                    _ => #ident::#first,
                }
            }
        }
    })
}

fn expand_messages(input: &DeriveInput) -> syn::Result<Tokens> {
    no_generics(input)?;
    let Data::Enum(data) = &input.data else {
        return Err(Error::new(
            input.ident.span(),
            "#[derive(Messages)] is for enums: one variant per message or event type",
        ));
    };
    let ident = &input.ident;
    let mut types = Vec::new();
    let mut index_arms = Vec::new();
    let mut write_arms = Vec::new();
    let mut read_arms = Vec::new();
    for (i, v) in data.variants.iter().enumerate() {
        let vident = &v.ident;
        let name = vident.to_string();
        let row = quote!(#name);
        let named = match &v.fields {
            Fields::Named(named) => named.clone(),
            Fields::Unit => syn::parse_quote!({}),
            Fields::Unnamed(_) => {
                return Err(Error::new(
                    vident.span(),
                    "a message or event variant needs named fields (or none)",
                ));
            }
        };
        let FieldCode { declare, names } = field_code(&named, &row)?;
        types.push(quote! {
            ::ticksync_protocol::schema::TypeDef {
                name: ::std::string::String::from(#name),
                fields: ::ticksync_protocol::schema::collect_fields(#name, [#(#declare),*])?,
            }
        });
        index_arms.push(quote!(#ident::#vident { .. } => #i,));
        write_arms.push(quote! {
            #ident::#vident { #(#names),* } => {
                #( ::ticksync_protocol::schema::FieldValue::write(#names, w); )*
            }
        });
        read_arms.push(quote! {
            #i => ::core::option::Option::Some(#ident::#vident {
                #( #names: ::ticksync_protocol::schema::FieldValue::read(r), )*
            }),
        });
    }
    if data.variants.len() > 256 {
        return Err(Error::new(
            ident.span(),
            "at most 256 message or event types",
        ));
    }
    Ok(quote! {
        impl ::ticksync_protocol::schema::Messages for #ident {
            fn types() -> ::core::result::Result<
                ::std::vec::Vec<::ticksync_protocol::schema::TypeDef>,
                ::ticksync_protocol::schema::SchemaError,
            > {
                ::core::result::Result::Ok(::std::vec![#(#types),*])
            }
            fn type_index(&self) -> usize {
                match self { #(#index_arms)* }
            }
            fn write_fields(&self, w: &mut ::ticksync_protocol::state::RowWriter<'_>) {
                let _ = &w;
                match self { #(#write_arms)* }
            }
            fn read_fields(
                index: usize,
                r: &mut ::ticksync_protocol::state::RowReader<'_>,
            ) -> ::core::option::Option<Self> {
                let _ = &r;
                match index {
                    #(#read_arms)*
                    _ => ::core::option::Option::None,
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(result: syn::Result<Tokens>) -> String {
        match result {
            Ok(_) => panic!("expected a compile error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn declaration_mistakes_are_compile_errors() {
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { x: f32 }
        }));
        assert!(e.contains("needs `range = MIN..=MAX`"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { #[state(range = 1.0..=1.0, precision = 0.1)] x: f32 }
        }));
        assert!(e.contains("min must be below max"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { #[state(range = 0.0..=1.0, precision = -0.1)] x: f32 }
        }));
        assert!(e.contains("must be above 0"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { #[state(colour = 3)] x: u8 }
        }));
        assert!(e.contains("unknown attribute `colour`"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { name: String }
        }));
        assert!(e.contains("max_len"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { #[state(precision = 0.5)] v: glam::Vec2 }
        }));
        assert!(e.contains("a Vec2 field needs"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { #[state(angle_bits = 40)] a: f32 }
        }));
        assert!(e.contains("1 to 32"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { t: f64 }
        }));
        assert!(e.contains("not a state field type"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { #[state(varint)] x: i16 }
        }));
        assert!(e.contains("`varint` applies to u8, u16 or u32"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { #[state(varint)] x: f32 }
        }));
        assert!(e.contains("`varint` applies to u8, u16 or u32"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { #[state(varint, max = 300)] x: u8 }
        }));
        assert!(e.contains("max 300 is above the type's 255"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { #[state(varint, max = 0)] x: u16 }
        }));
        assert!(e.contains("from 1 to"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { #[state(max = 9)] x: u16 }
        }));
        assert!(e.contains("goes with `varint`"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P { #[state(varint, range = 0..=9)] x: u16 }
        }));
        assert!(e.contains("not `range`"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P(u8);
        }));
        assert!(e.contains("named fields"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            enum P { A }
        }));
        assert!(e.contains("StateEnum"), "{e}");
        let e = error_of(expand_state_enum(&syn::parse_quote! {
            enum P { A(u8) }
        }));
        assert!(e.contains("cannot have fields"), "{e}");
        let e = error_of(expand_state_enum(&syn::parse_quote! {
            enum P {}
        }));
        assert!(e.contains("1 to 256"), "{e}");
        let e = error_of(expand_messages(&syn::parse_quote! {
            enum M { Chat(String) }
        }));
        assert!(e.contains("named fields"), "{e}");
        let e = error_of(expand_state(&syn::parse_quote! {
            struct P<T> { x: T }
        }));
        assert!(e.contains("generic"), "{e}");
    }

    #[test]
    fn a_good_declaration_expands() {
        let tokens = expand_state(&syn::parse_quote! {
            #[state(name = "player")]
            struct P {
                #[state(range = -1.0..=1.0, precision = 0.01)]
                x: f32,
                #[state(owner_only)]
                ammo: u8,
                #[state(varint, max = 999)]
                kills: u16,
            }
        })
        .expect("expands")
        .to_string();
        assert!(tokens.contains("\"player\""), "{tokens}");
        assert!(
            tokens.contains("varint : true") && tokens.contains("Some (999u32)"),
            "{tokens}"
        );
        assert!(
            tokens.contains("- 1f64") || tokens.contains("-1f64"),
            "{tokens}"
        );
    }
}
