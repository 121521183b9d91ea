//! Kafka JAAS configuration values (`sasl.jaas.config`,
//! `listener.name.<listener>.<mechanism>.sasl.jaas.config`), parsed as Kafka's `JaasConfig` does.
//!
//! Grammar: one or more entries `LoginModuleClass flag key=value ... ;` with flag one of `required`,
//! `requisite`, `sufficient`, `optional` (any case). Tokens follow Java's `StreamTokenizer` as Kafka
//! configures it:
//! * words are runs of letters, digits and `. - _ $` (and any non-ASCII letter) that start with a
//!   letter, `_` or `$`;
//! * values may be quoted with `"` or `'`, with Java escapes (`\n`, `\t`, `\\`, `\"`, octal `\101`, …);
//!   a quoted string also ends at a line break (or the end of the input);
//! * `//` and `/* … */` are comments, and so is a lone `/` up to the end of the line;
//! * an *unquoted* value that starts with a digit, `.` or `-` is a number to Java, which Kafka rejects
//!   ("Value not specified for key …"): quote such values.
//!
//! Kafka's broker accepts exactly one login module per `sasl.jaas.config` property; a static JAAS file
//! section may hold several, so the parser accepts several.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

/// Class name of Kafka's PLAIN login module, whose `user_<name>="<password>"` options are the
/// broker's PLAIN users.
pub const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// Class name of Kafka's SCRAM login module.
pub const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// Prefix of the options that define PLAIN users (`user_alice="alice-secret"`).
const PLAIN_USER_PREFIX: &str = "user_";

/// Why a JAAS config value was rejected (Kafka's texts where Kafka has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JaasError {
    /// The value holds no entry at all.
    #[error("Login module not specified in JAAS config")]
    NoLoginModule,
    /// An entry does not start with a login module class name (e.g. it starts with a number or `=`).
    #[error("Login module class name not specified in JAAS config")]
    InvalidLoginModule,
    /// The input ends after the login module class name.
    #[error("Login module control flag not specified in JAAS config")]
    ControlFlagNotSpecified,
    /// The token after the class name is not a word or quoted string.
    #[error("Login module control flag is not available in the JAAS config")]
    ControlFlagNotAvailable,
    /// The flag is not required, requisite, sufficient or optional.
    #[error("Invalid login module control flag '{0}' in JAAS config")]
    InvalidControlFlag(String),
    /// An option does not start with a word or quoted string.
    #[error("Option name not specified in JAAS config")]
    InvalidOptionName,
    /// `key` is not followed by `=` and a word or quoted string.
    #[error("Value not specified for key '{0}' in JAAS config")]
    ValueNotSpecified(String),
    /// The input ends before the entry's `;`.
    #[error("JAAS config entry not terminated by semi-colon")]
    NotTerminated,
}

/// How a login module's result counts (`javax.security.auth.login.AppConfigurationEntry.LoginModuleControlFlag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlFlag {
    /// `required`
    Required,
    /// `requisite`
    Requisite,
    /// `sufficient`
    Sufficient,
    /// `optional`
    Optional,
}

impl ControlFlag {
    /// The lower-case keyword.
    pub const fn as_str(self) -> &'static str {
        match self {
            ControlFlag::Required => "required",
            ControlFlag::Requisite => "requisite",
            ControlFlag::Sufficient => "sufficient",
            ControlFlag::Optional => "optional",
        }
    }
}

impl fmt::Display for ControlFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `LoginModuleClass flag key=value ... ;` entry. `Debug` prints option names, not values
/// (they hold passwords).
#[derive(Clone, PartialEq, Eq)]
pub struct LoginModule {
    /// The login module class name, e.g. [`PLAIN_LOGIN_MODULE`].
    pub class_name: String,
    /// The control flag.
    pub flag: ControlFlag,
    /// The options; for a repeated key the last value wins (as in Kafka's `HashMap`).
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for LoginModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginModule")
            .field("class_name", &self.class_name)
            .field("flag", &self.flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A parsed JAAS config value: one or more login modules, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasConfig {
    /// The entries in the order written; never empty.
    pub modules: Vec<LoginModule>,
}

impl JaasConfig {
    /// Parses a JAAS config value, e.g.
    /// `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret";`.
    pub fn parse(config: &str) -> Result<Self, JaasError> {
        let mut lexer = Lexer::new(config);
        let mut modules = Vec::new();
        loop {
            let first = lexer.next_token();
            if first == Token::Eof {
                break;
            }
            modules.push(parse_entry(first, &mut lexer)?);
        }
        if modules.is_empty() {
            return Err(JaasError::NoLoginModule);
        }
        Ok(JaasConfig { modules })
    }

    /// The value of `key` in the first module that has it (Kafka's `JaasContext.configEntryOption`
    /// without a module filter).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.modules
            .iter()
            .find_map(|m| m.options.get(key))
            .map(String::as_str)
    }

    /// The PLAIN users: every `user_<name>="<password>"` option of the [`PLAIN_LOGIN_MODULE`] entries,
    /// name → password (the first module that defines a user wins, as in Kafka's lookup).
    pub fn plain_users(&self) -> HashMap<String, String> {
        let mut users = HashMap::new();
        for module in self
            .modules
            .iter()
            .filter(|m| m.class_name == PLAIN_LOGIN_MODULE)
        {
            for (key, value) in &module.options {
                if let Some(name) = key.strip_prefix(PLAIN_USER_PREFIX) {
                    users
                        .entry(name.to_owned())
                        .or_insert_with(|| value.clone());
                }
            }
        }
        users
    }
}

impl FromStr for JaasConfig {
    type Err = JaasError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JaasConfig::parse(s)
    }
}

/// Kafka's `JaasConfig.parseAppConfigurationEntry`, starting after its first token.
fn parse_entry(first: Token, lexer: &mut Lexer) -> Result<LoginModule, JaasError> {
    let class_name = first.into_sval();
    let flag = match lexer.next_token() {
        Token::Eof => return Err(JaasError::ControlFlagNotSpecified),
        token => token
            .into_sval()
            .ok_or(JaasError::ControlFlagNotAvailable)?,
    };
    let flag = match flag.to_uppercase().as_str() {
        "REQUIRED" => ControlFlag::Required,
        "REQUISITE" => ControlFlag::Requisite,
        "SUFFICIENT" => ControlFlag::Sufficient,
        "OPTIONAL" => ControlFlag::Optional,
        _ => return Err(JaasError::InvalidControlFlag(flag)),
    };
    let mut options = BTreeMap::new();
    loop {
        let key = match lexer.next_token() {
            Token::Eof => return Err(JaasError::NotTerminated),
            Token::Char(';') => break,
            token => token.into_sval().ok_or(JaasError::InvalidOptionName)?,
        };
        if lexer.next_token() != Token::Char('=') {
            return Err(JaasError::ValueNotSpecified(key));
        }
        let Some(value) = lexer.next_token().into_sval() else {
            return Err(JaasError::ValueNotSpecified(key));
        };
        options.insert(key, value);
    }
    let class_name = class_name
        .filter(|c| !c.is_empty())
        .ok_or(JaasError::InvalidLoginModule)?;
    Ok(LoginModule {
        class_name,
        flag,
        options,
    })
}

/// A `StreamTokenizer` token.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    Eof,
    Word(String),
    Quoted(String),
    /// A number (Java keeps no string value for it).
    Number,
    /// An ordinary character such as `=` or `;`.
    Char(char),
}

impl Token {
    /// Java's `sval`: set for words and quoted strings only.
    fn into_sval(self) -> Option<String> {
        match self {
            Token::Word(s) | Token::Quoted(s) => Some(s),
            Token::Eof | Token::Number | Token::Char(_) => None,
        }
    }
}

/// `java.io.StreamTokenizer` with Kafka's settings: default syntax (letters and `\u00A0-\u00FF` are
/// word characters, `0-9 . -` numeric, `"` `'` quotes, `/` a comment character, `\0-\u0020` white
/// space), plus `slashSlashComments`, `slashStarComments` and word characters `- _ $`.
struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn new(input: &str) -> Self {
        Lexer {
            chars: input.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn is_whitespace(c: char) -> bool {
        c <= ' '
    }

    fn is_numeric(c: char) -> bool {
        c.is_ascii_digit() || c == '.' || c == '-'
    }

    fn is_word(c: char) -> bool {
        c.is_ascii_alphabetic()
            || matches!(c, '-' | '_' | '$')
            || ('\u{A0}'..='\u{FF}').contains(&c)
            || c > '\u{FF}'
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' || c == '\r' {
                break;
            }
        }
    }

    fn next_token(&mut self) -> Token {
        loop {
            while self.peek().is_some_and(Self::is_whitespace) {
                self.pos += 1;
            }
            let Some(c) = self.bump() else {
                return Token::Eof;
            };
            if Self::is_numeric(c) {
                if c == '-' && !self.peek().is_some_and(|d| d == '.' || d.is_ascii_digit()) {
                    return Token::Char('-');
                }
                let mut seen_dot = c == '.';
                while let Some(d) = self.peek() {
                    if d.is_ascii_digit() {
                        self.pos += 1;
                    } else if d == '.' && !seen_dot {
                        seen_dot = true;
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                return Token::Number;
            }
            if Self::is_word(c) {
                let mut word = String::from(c);
                while let Some(d) = self
                    .peek()
                    .filter(|&d| Self::is_word(d) || Self::is_numeric(d))
                {
                    word.push(d);
                    self.pos += 1;
                }
                return Token::Word(word);
            }
            if c == '"' || c == '\'' {
                return Token::Quoted(self.quoted(c));
            }
            if c == '/' {
                match self.bump() {
                    Some('*') => {
                        // Block comment up to "*/"; unterminated runs to the end.
                        let mut prev = '\0';
                        loop {
                            match self.bump() {
                                None => return Token::Eof,
                                Some('/') if prev == '*' => break,
                                Some(d) => prev = d,
                            }
                        }
                    }
                    Some('/') => self.skip_line(),
                    // A lone '/' is the comment character: the rest of the line is skipped. As in
                    // Java, the character right after it was consumed above, even a line break.
                    Some(_) => self.skip_line(),
                    None => {}
                }
                continue;
            }
            return Token::Char(c);
        }
    }

    /// The body of a quoted string after its opening quote (Java's escape rules).
    fn quoted(&mut self, quote: char) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == quote {
                self.pos += 1;
                break;
            }
            if c == '\n' || c == '\r' {
                // The string ends at the line break, which stays for the next token.
                break;
            }
            self.pos += 1;
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.bump() else {
                break;
            };
            if let Some(first) = e.to_digit(8) {
                let mut value = first;
                if let Some(second) = self.peek().and_then(|d| d.to_digit(8)) {
                    self.pos += 1;
                    value = value * 8 + second;
                    if first <= 3 {
                        if let Some(third) = self.peek().and_then(|d| d.to_digit(8)) {
                            self.pos += 1;
                            value = value * 8 + third;
                        }
                    }
                }
                out.push(char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER));
                continue;
            }
            out.push(match e {
                'a' => '\u{7}',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'v' => '\u{b}',
                other => other,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

    #[test]
    fn plain_module() {
        let config = JaasConfig::parse(PLAIN).unwrap();
        assert_eq!(config.modules.len(), 1);
        let module = &config.modules[0];
        assert_eq!(module.class_name, PLAIN_LOGIN_MODULE);
        assert_eq!(module.flag, ControlFlag::Required);
        assert_eq!(module.options.len(), 4);
        assert_eq!(config.option("username"), Some("admin"));
        assert_eq!(config.option("password"), Some("admin-secret"));
        assert_eq!(config.option("nope"), None);
        let users = config.plain_users();
        assert_eq!(
            users,
            HashMap::from([
                ("admin".to_owned(), "admin-secret".to_owned()),
                ("alice".to_owned(), "alice-secret".to_owned()),
            ])
        );
        // Works with the PLAIN server.
        assert_eq!(
            crate::plain::authenticate(b"\0alice\0alice-secret", |u| users.get(u)),
            Ok("alice".to_owned())
        );
        assert!(!format!("{config:?}").contains("secret"));
        assert_eq!(PLAIN.parse::<JaasConfig>(), Ok(config));
    }

    #[test]
    fn several_modules_flags_and_layout() {
        let text = "
            // a comment
            org.apache.kafka.common.security.scram.ScramLoginModule REQUIRED
                username=\"alice\" password='x';   /* block
                comment */
            com.example.Other Sufficient debug=true path=$HOME_dir-x.y ;
            x.Y optional ; z requisite;";
        let config = JaasConfig::parse(text).unwrap();
        let flags: Vec<_> = config.modules.iter().map(|m| m.flag).collect();
        assert_eq!(
            flags,
            [
                ControlFlag::Required,
                ControlFlag::Sufficient,
                ControlFlag::Optional,
                ControlFlag::Requisite
            ]
        );
        assert_eq!(config.modules[0].class_name, SCRAM_LOGIN_MODULE);
        assert_eq!(config.modules[3].class_name, "z");
        // 'it''s' is two quoted strings: "it" is the value, then "s" is read as the next key.
        assert_eq!(
            JaasConfig::parse("a required p='it''s';"),
            Err(JaasError::ValueNotSpecified("s".to_owned()))
        );
        assert_eq!(config.option("password"), Some("x"));
        assert_eq!(config.option("debug"), Some("true"));
        assert_eq!(config.option("path"), Some("$HOME_dir-x.y"));
        assert_eq!(config.modules[1].flag.to_string(), "sufficient");
        // No PLAIN module: no PLAIN users.
        assert!(config.plain_users().is_empty());
    }

    #[test]
    fn plain_users_only_from_plain_modules_first_wins() {
        let config = JaasConfig::parse(&format!(
            "{PLAIN} {PLAIN_LOGIN_MODULE} optional user_alice=\"other\" user_bob=\"bob-secret\";
             {SCRAM_LOGIN_MODULE} required user_carol=\"c\";"
        ))
        .unwrap();
        let users = config.plain_users();
        assert_eq!(users.get("alice").map(String::as_str), Some("alice-secret"));
        assert_eq!(users.get("bob").map(String::as_str), Some("bob-secret"));
        assert_eq!(users.get("carol"), None);
        assert_eq!(users.len(), 3);
    }

    #[test]
    fn quoting_and_escapes() {
        let config = JaasConfig::parse(
            r#"m required a="x\"y" b='say "hi"' c="tab\there" d="back\\slash" e="\101\60\0601" f="" g="ünï;=,/" h="\q";"#,
        )
        .unwrap();
        let o = |k: &str| config.option(k).unwrap().to_owned();
        assert_eq!(o("a"), "x\"y");
        assert_eq!(o("b"), "say \"hi\"");
        assert_eq!(o("c"), "tab\there");
        assert_eq!(o("d"), "back\\slash");
        assert_eq!(o("e"), "A001");
        assert_eq!(o("f"), "");
        assert_eq!(o("g"), "ünï;=,/");
        assert_eq!(o("h"), "q");
        // Repeated key: last wins.
        let config = JaasConfig::parse("m required k=\"1\" k=\"2\";").unwrap();
        assert_eq!(config.option("k"), Some("2"));
        // A quoted string ends at a line break; an unterminated one at the end of input.
        let config = JaasConfig::parse("m required k=\"abc\n;").unwrap();
        assert_eq!(config.option("k"), Some("abc"));
        assert_eq!(
            JaasConfig::parse("m required k=\"abc;"),
            Err(JaasError::NotTerminated)
        );
        // Quoted class name and flag are fine, as in Java.
        let config = JaasConfig::parse("'my.Module' \"optional\";").unwrap();
        assert_eq!(config.modules[0].class_name, "my.Module");
        assert!(config.modules[0].options.is_empty());
    }

    #[test]
    fn errors() {
        let cases: [(&str, JaasError); 16] = [
            ("", JaasError::NoLoginModule),
            ("   // only a comment", JaasError::NoLoginModule),
            ("/* unterminated", JaasError::NoLoginModule),
            ("m", JaasError::ControlFlagNotSpecified),
            ("m ;", JaasError::ControlFlagNotAvailable),
            ("m 5", JaasError::ControlFlagNotAvailable),
            (
                "m mandatory;",
                JaasError::InvalidControlFlag("mandatory".to_owned()),
            ),
            ("m required", JaasError::NotTerminated),
            ("m required k=\"v\"", JaasError::NotTerminated),
            (
                "m required k;",
                JaasError::ValueNotSpecified("k".to_owned()),
            ),
            (
                "m required k=;",
                JaasError::ValueNotSpecified("k".to_owned()),
            ),
            (
                "m required k=",
                JaasError::ValueNotSpecified("k".to_owned()),
            ),
            (
                "m required k=123;",
                JaasError::ValueNotSpecified("k".to_owned()),
            ),
            (
                "m required k=-1;",
                JaasError::ValueNotSpecified("k".to_owned()),
            ),
            ("m required =\"v\";", JaasError::InvalidOptionName),
            ("1 required;", JaasError::InvalidLoginModule),
        ];
        for (text, expected) in cases {
            assert_eq!(JaasConfig::parse(text), Err(expected), "{text:?}");
        }
        assert_eq!(
            JaasConfig::parse("m required k=-x;"),
            Err(JaasError::ValueNotSpecified("k".to_owned()))
        );
        assert_eq!(
            JaasError::InvalidControlFlag("x".to_owned()).to_string(),
            "Invalid login module control flag 'x' in JAAS config"
        );
        assert_eq!(
            JaasError::NotTerminated.to_string(),
            "JAAS config entry not terminated by semi-colon"
        );
        // A lone '/' comments out the rest of the line, so an unquoted path loses its tail.
        assert_eq!(
            JaasConfig::parse("m required k=a/b;"),
            Err(JaasError::NotTerminated)
        );
        let config = JaasConfig::parse("m required k=a/b;\n;").unwrap();
        assert_eq!(config.option("k"), Some("a"));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "\"",
            "'",
            "\\",
            "/",
            "//",
            "/*",
            "*/",
            "-",
            ".",
            "m required k=\"\\",
            "m required k=\"\\7",
            "m required k=\"\\777\";",
            "\u{0}\u{1f}\u{7f}\u{85}\u{10ffff}",
            "m r\u{ff}quired;",
        ] {
            let _ = JaasConfig::parse(text);
        }
        let config = JaasConfig::parse("m required k=\"\\777\";").unwrap();
        assert_eq!(config.option("k"), Some("?7"));
    }
}
