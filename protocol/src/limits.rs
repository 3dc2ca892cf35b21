//! Limits shared by every peer. Decoding enforces the byte limits before allocating.

crate::listed_consts! {
    as u64, "Every limit of this module: (constant name, value), in the order of `PROTOCOL.md`'s table.";
    /// Largest client message the server accepts, in bytes. The largest valid one (a `Hello`
    /// with the longest name and a resume token) is well under it.
    MAX_CLIENT_MESSAGE_BYTES: usize = 256;
    /// Largest server message a client must accept, in bytes (a `Joined` with the
    /// largest schema, a snapshot, or a lobby list of [`MAX_LISTED_LOBBIES`] lobbies).
    MAX_SERVER_MESSAGE_BYTES: usize = 64 * 1024;
    /// Longest player name, in bytes of UTF-8.
    MAX_PLAYER_NAME_BYTES: usize = 24;
    /// Longest lobby name, in bytes of UTF-8.
    MAX_LOBBY_NAME_BYTES: usize = 32;
    /// Longest private lobby code, in bytes.
    MAX_CODE_BYTES: usize = 16;
    /// Longest error or notice text the server sends, in bytes.
    MAX_TEXT_BYTES: usize = 256;
    /// Most lobbies one `LobbyList` carries (the fullest first).
    MAX_LISTED_LOBBIES: usize = 100;
    /// Most players one lobby can hold (seats 1 to 250; a server may set a lower cap).
    MAX_LOBBY_PLAYERS: u16 = 250;
    /// Most key-value pairs of one [`crate::GameOptions`].
    MAX_GAME_OPTIONS: usize = 8;
    /// Longest game option key, in bytes (ASCII lowercase letters, digits and `_`).
    MAX_OPTION_KEY_BYTES: usize = 32;
    /// Longest game option value, in bytes of UTF-8.
    MAX_OPTION_VALUE_BYTES: usize = 64;
}

/// Why game options were refused by [`check_game_options`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsProblem {
    /// More than [`MAX_GAME_OPTIONS`] pairs.
    #[error("{0} game options: at most {MAX_GAME_OPTIONS}")]
    TooMany(usize),
    /// A key that is empty, too long or not of `[a-z0-9_]`.
    #[error("game option key {0:?}: 1 to {MAX_OPTION_KEY_BYTES} bytes of a-z, 0-9 and _")]
    BadKey(String),
    /// A value longer than [`MAX_OPTION_VALUE_BYTES`].
    #[error("game option {0:?}: the value is over {MAX_OPTION_VALUE_BYTES} bytes")]
    ValueTooLong(String),
    /// A key given twice.
    #[error("game option {0:?} given twice")]
    Duplicate(String),
}

/// Checks game options against the limits: at most [`MAX_GAME_OPTIONS`] pairs, keys of
/// 1 to [`MAX_OPTION_KEY_BYTES`] bytes of `[a-z0-9_]`, each key once, values of at most
/// [`MAX_OPTION_VALUE_BYTES`] bytes.
pub fn check_game_options(options: &[(String, String)]) -> Result<(), OptionsProblem> {
    if options.len() > MAX_GAME_OPTIONS {
        return Err(OptionsProblem::TooMany(options.len()));
    }
    for (i, (key, value)) in options.iter().enumerate() {
        let key_ok = !key.is_empty()
            && key.len() <= MAX_OPTION_KEY_BYTES
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            return Err(OptionsProblem::BadKey(key.clone()));
        }
        if value.len() > MAX_OPTION_VALUE_BYTES {
            return Err(OptionsProblem::ValueTooLong(key.clone()));
        }
        if options[..i].iter().any(|(k, _)| k == key) {
            return Err(OptionsProblem::Duplicate(key.clone()));
        }
    }
    Ok(())
}

/// `text` cut to at most [`MAX_TEXT_BYTES`] at a character boundary (what an `Error`
/// message or a `Notice` may carry).
pub fn clip_text(text: &str) -> &str {
    let mut end = text.len().min(MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Why a name was refused by [`check_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// Empty or only white space.
    Empty,
    /// Longer than the limit.
    TooLong,
    /// Contains a control character.
    ControlCharacter,
    /// Contains an invisible or text-direction character (a zero-width space, a
    /// bidirectional override, ...): "adm\u{200b}in" would show as "admin".
    InvisibleCharacter,
}

/// Whether `c` is invisible or steers text direction: Unicode's format characters (Cf:
/// zero-width spaces and joiners, bidirectional marks, embeddings, overrides and
/// isolates, the byte-order mark, tags...), the line and paragraph separators, and the
/// blank fillers that render as nothing.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{115f}'..='\u{1160}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{3164}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

/// Trims `name` and checks it against `max_bytes`: not empty, no control characters, no
/// invisible or text-direction characters ([`is_invisible`]).
/// Returns the trimmed name.
pub fn check_name(name: &str, max_bytes: usize) -> Result<&str, NameProblem> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(NameProblem::Empty);
    }
    if trimmed.len() > max_bytes {
        return Err(NameProblem::TooLong);
    }
    if trimmed.chars().any(char::is_control) {
        return Err(NameProblem::ControlCharacter);
    }
    if trimmed.chars().any(is_invisible) {
        return Err(NameProblem::InvisibleCharacter);
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_clipped_at_a_character_boundary() {
        assert_eq!(clip_text("short"), "short");
        let long = "é".repeat(200);
        let clipped = clip_text(&long);
        assert!(clipped.len() <= MAX_TEXT_BYTES && clipped.len() >= MAX_TEXT_BYTES - 1);
        assert!(clipped.chars().all(|c| c == 'é'));
    }

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(check_name("  ada ", 24), Ok("ada"));
        assert_eq!(check_name("   ", 24), Err(NameProblem::Empty));
        assert_eq!(check_name(&"x".repeat(25), 24), Err(NameProblem::TooLong));
        assert_eq!(
            check_name("a\u{7}b", 24),
            Err(NameProblem::ControlCharacter)
        );
        assert_eq!(check_name("émile", 24), Ok("émile"));
    }

    #[test]
    fn invisible_and_direction_characters_are_refused_in_names() {
        for c in [
            '\u{200b}',
            '\u{200d}',
            '\u{200f}',
            '\u{202a}',
            '\u{202e}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{2069}',
            '\u{feff}',
            '\u{ad}',
            '\u{e0041}',
        ] {
            assert_eq!(
                check_name(&format!("adm{c}in"), 24),
                Err(NameProblem::InvisibleCharacter),
                "U+{:04X}",
                u32::from(c)
            );
        }
        assert_eq!(check_name("Zoë 李 🙂", 24), Ok("Zoë 李 🙂"));
    }
}
