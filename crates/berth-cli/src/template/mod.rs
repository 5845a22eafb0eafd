//! Go's text/template, the part docker's `--format` and `inspect -f` use, over JSON values:
//! `{{.Field.Chain}}`, `{{$var}}`, pipelines, `{{if}}`/`{{else if}}`/`{{else}}`,
//! `{{range}}` (with `$i, $v :=`), `{{with}}`, trim markers `{{-`/`-}}`, comments, and
//! docker's functions (json, join, split, lower, upper, title, truncate, pad, println)
//! besides Go's (index, len, print, printf, eq, ne, lt, le, gt, ge, and, or, not).

mod funcs;

use serde_json::Value;

pub use funcs::to_text;
use funcs::{call, kind, truthy};

#[derive(Debug, Clone)]
enum Term {
    Dot,
    /// `.A.B` relative to dot.
    Field(Vec<String>),
    /// `$x.A.B` (`$` is the root).
    Var(String, Vec<String>),
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Nil,
    Func(String),
    /// `(pipeline).A.B`
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Vec<Term>>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Dot,
    Field(String),
    Var(String),
    Ident(String),
    Str(String),
    Num(String),
    Pipe,
    Open,
    Close,
    Comma,
    Declare,
    Assign,
}

fn lex_action(s: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let ident = |i: &mut usize| {
        let st = *i;
        while *i < c.len() && (c[*i].is_alphanumeric() || c[*i] == '_') {
            *i += 1;
        }
        c[st..*i].iter().collect::<String>()
    };
    while i < c.len() {
        let ch = c[i];
        match ch {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            '(' => {
                out.push(Tok::Open);
                i += 1
            }
            ')' => {
                out.push(Tok::Close);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' if c.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1
            }
            '.' => {
                i += 1;
                if i < c.len() && (c[i].is_alphabetic() || c[i] == '_') {
                    out.push(Tok::Field(ident(&mut i)));
                } else {
                    out.push(Tok::Dot);
                }
            }
            '$' => {
                i += 1;
                out.push(Tok::Var(ident(&mut i)));
            }
            '"' => {
                i += 1;
                let mut v = String::new();
                loop {
                    match c.get(i) {
                        None => return Err("unterminated quoted string".into()),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            v.push(match c.get(i) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('r') => '\r',
                                Some(&o) => o,
                                None => return Err("unterminated quoted string".into()),
                            });
                        }
                        Some(&o) => v.push(o),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(v));
            }
            '`' => {
                let st = i + 1;
                i = st;
                while i < c.len() && c[i] != '`' {
                    i += 1;
                }
                if i >= c.len() {
                    return Err("unterminated raw quoted string".into());
                }
                out.push(Tok::Str(c[st..i].iter().collect()));
                i += 1;
            }
            '-' | '+' | '0'..='9' => {
                let st = i;
                i += 1;
                while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                    i += 1;
                }
                out.push(Tok::Num(c[st..i].iter().collect()));
            }
            _ if ch.is_alphabetic() || ch == '_' => out.push(Tok::Ident(ident(&mut i))),
            _ => return Err(format!("unexpected {ch:?} in operand")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn fields(&mut self) -> Vec<String> {
        let mut f = Vec::new();
        while let Some(Tok::Field(n)) = self.peek() {
            f.push(n.clone());
            self.pos += 1;
        }
        f
    }

    fn pipeline(&mut self) -> Result<Pipe, String> {
        let mut decl = Vec::new();
        // `$x :=` or `$i, $v :=`
        let save = self.pos;
        while let Some(Tok::Var(v)) = self.peek() {
            let v = v.clone();
            self.pos += 1;
            match self.peek() {
                Some(Tok::Comma) => {
                    decl.push(v);
                    self.pos += 1;
                }
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    decl.push(v);
                    self.pos += 1;
                    break;
                }
                _ => {
                    decl.clear();
                    self.pos = save;
                    break;
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            let mut cmd = Vec::new();
            while let Some(t) = self.peek() {
                if matches!(t, Tok::Pipe | Tok::Close) {
                    break;
                }
                cmd.push(self.term()?);
            }
            if cmd.is_empty() {
                return Err("missing value for command".into());
            }
            cmds.push(cmd);
            if self.peek() == Some(&Tok::Pipe) {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(Pipe { decl, cmds })
    }

    fn term(&mut self) -> Result<Term, String> {
        let t = self.toks.get(self.pos).ok_or("unexpected end of action")?;
        self.pos += 1;
        Ok(match t {
            Tok::Dot => Term::Dot,
            Tok::Field(n) => {
                let mut f = vec![n.clone()];
                f.extend(self.fields());
                Term::Field(f)
            }
            Tok::Var(v) => {
                let v = v.clone();
                Term::Var(v, self.fields())
            }
            Tok::Str(s) => Term::Str(s.clone()),
            Tok::Num(n) => {
                let v: Value = serde_json::from_str(n).map_err(|_| format!("bad number syntax: {n:?}"))?;
                match v {
                    Value::Number(n) => Term::Num(n),
                    _ => return Err(format!("bad number syntax: {n:?}")),
                }
            }
            Tok::Ident(i) => match i.as_str() {
                "true" => Term::Bool(true),
                "false" => Term::Bool(false),
                "nil" => Term::Nil,
                _ => Term::Func(i.clone()),
            },
            Tok::Open => {
                let p = self.pipeline()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("unclosed left paren".into());
                }
                self.pos += 1;
                Term::Sub(Box::new(p), self.fields())
            }
            t => return Err(format!("unexpected {t:?} in operand")),
        })
    }
}

fn parse_pipe(s: &str) -> Result<Pipe, String> {
    let mut p = Parser {
        toks: lex_action(s)?,
        pos: 0,
    };
    let pipe = p.pipeline()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?} in command", p.toks[p.pos]));
    }
    Ok(pipe)
}

/// Text and actions, with trim markers applied.
fn split(src: &str) -> Result<Vec<(bool, String)>, String> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        let mut inner = &rest[start + 2..];
        if inner.starts_with("- ") || inner.starts_with("-\t") || inner.starts_with("-\n") {
            text = text.trim_end().to_string();
            inner = &inner[1..];
        }
        out.push((false, text));
        let end = inner.find("}}").ok_or("unclosed action")?;
        let mut action = &inner[..end];
        let mut after = &inner[end + 2..];
        if action.ends_with(" -") || action.ends_with("\t-") || action.ends_with("\n-") {
            action = &action[..action.len() - 1];
            after = after.trim_start();
        }
        out.push((true, action.trim().to_string()));
        rest = after;
    }
    out.push((false, rest.to_string()));
    Ok(out)
}

enum Stop {
    Eof,
    End,
    Else(Option<Pipe>),
}

fn parse_list(items: &[(bool, String)], pos: &mut usize) -> Result<(Vec<Node>, Stop), String> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let (is_action, s) = &items[*pos];
        *pos += 1;
        if !is_action {
            if !s.is_empty() {
                nodes.push(Node::Text(s.clone()));
            }
            continue;
        }
        if s.starts_with("/*") {
            continue;
        }
        let (word, rest) = s.split_once([' ', '\t', '\n']).unwrap_or((s.as_str(), ""));
        match word {
            "end" => return Ok((nodes, Stop::End)),
            "else" => {
                let rest = rest.trim();
                if let Some(cond) = rest.strip_prefix("if ") {
                    return Ok((nodes, Stop::Else(Some(parse_pipe(cond)?))));
                }
                return Ok((nodes, Stop::Else(None)));
            }
            "if" | "range" | "with" => {
                let pipe = parse_pipe(rest)?;
                let (body, stop) = parse_list(items, pos)?;
                let els = match stop {
                    Stop::End => Vec::new(),
                    Stop::Else(None) => match parse_list(items, pos)? {
                        (e, Stop::End) => e,
                        _ => return Err(format!("expected end after else in {word}")),
                    },
                    // `else if` nests another if that shares this one's end.
                    Stop::Else(Some(cond)) => {
                        let (then, stop2) = parse_list(items, pos)?;
                        let els2 = match stop2 {
                            Stop::End => Vec::new(),
                            Stop::Else(None) => match parse_list(items, pos)? {
                                (e, Stop::End) => e,
                                _ => return Err("expected end".into()),
                            },
                            Stop::Else(Some(_)) => return Err("only one else if chain level is supported".into()),
                            Stop::Eof => return Err(format!("unexpected EOF in {word}")),
                        };
                        vec![Node::If(cond, then, els2)]
                    }
                    Stop::Eof => return Err(format!("unexpected EOF: {word} without end")),
                };
                nodes.push(match word {
                    "if" => Node::If(pipe, body, els),
                    "range" => Node::Range(pipe, body, els),
                    _ => Node::With(pipe, body, els),
                });
            }
            "define" | "template" | "block" | "break" | "continue" => {
                return Err(format!("{word} is not supported in --format"));
            }
            _ => nodes.push(Node::Action(parse_pipe(s)?)),
        }
    }
    Ok((nodes, Stop::Eof))
}

struct Exec<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
    /// Rendering column headers: `.Label "x"` gives "x".
    header: bool,
}

impl Exec<'_> {
    fn field(&self, mut v: Value, path: &[String]) -> Result<Value, String> {
        for name in path {
            v = match v {
                Value::Object(mut o) => match o.remove(name) {
                    Some(x) => x,
                    // A struct field (capitalised) must exist, as in Go; a map key need not.
                    None if name.starts_with(|c: char| c.is_uppercase()) && !self.header => {
                        return Err(format!("can't evaluate field {name}"))
                    }
                    None => Value::String(String::new()),
                },
                Value::Null => Value::Null,
                other => return Err(format!("can't evaluate field {name} in {}", kind(&other))),
            };
        }
        Ok(v)
    }

    fn var(&self, name: &str) -> Result<Value, String> {
        if name.is_empty() {
            return Ok(self.root.clone());
        }
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable: ${name}"))
    }

    fn term(&mut self, t: &Term, dot: &Value) -> Result<Value, String> {
        Ok(match t {
            Term::Dot => dot.clone(),
            Term::Field(f) => self.field(dot.clone(), f)?,
            Term::Var(n, f) => {
                let v = self.var(n)?;
                self.field(v, f)?
            }
            Term::Str(s) => Value::String(s.clone()),
            Term::Num(n) => Value::Number(n.clone()),
            Term::Bool(b) => Value::Bool(*b),
            Term::Nil => Value::Null,
            Term::Func(f) => call(f, Vec::new())?,
            Term::Sub(p, f) => {
                let v = self.pipe(p, dot)?;
                self.field(v, f)?
            }
        })
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, String> {
        let mut last: Option<Value> = None;
        for cmd in &p.cmds {
            let v = match &cmd[0] {
                Term::Func(name) => {
                    let mut args = Vec::new();
                    for a in &cmd[1..] {
                        args.push(self.term(a, dot)?);
                    }
                    args.extend(last.take());
                    call(name, args)?
                }
                // A method with arguments: docker's `.Label "key"` on ps/images rows.
                Term::Field(f) if cmd.len() > 1 || (last.is_some() && f.last().is_some_and(|l| l == "Label")) => {
                    let mut args = Vec::new();
                    for a in &cmd[1..] {
                        args.push(self.term(a, dot)?);
                    }
                    args.extend(last.take());
                    let key = args.first().map(to_text).unwrap_or_default();
                    if f.last().map(String::as_str) != Some("Label") {
                        return Err(format!("can't give argument to non-function .{}", f.join(".")));
                    }
                    if self.header {
                        Value::String(key)
                    } else {
                        let recv = self.field(dot.clone(), &f[..f.len() - 1])?;
                        recv.get("__labels")
                            .and_then(|l| l.get(&key))
                            .cloned()
                            .unwrap_or(Value::String(String::new()))
                    }
                }
                t => {
                    if cmd.len() > 1 || last.is_some() {
                        return Err(format!("can't give argument to non-function {t:?}"));
                    }
                    self.term(t, dot)?
                }
            };
            last = Some(v);
        }
        let v = last.unwrap_or(Value::Null);
        for d in &p.decl {
            self.vars.push((d.clone(), v.clone()));
        }
        Ok(v)
    }

    fn run(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), String> {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        out.push_str(&to_text(&v));
                    }
                }
                Node::If(p, then, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    self.run(if truthy(&v) { then } else { els }, dot, out)?;
                    self.vars.truncate(mark);
                }
                Node::With(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    if truthy(&v) {
                        self.run(body, &v, out)?;
                    } else {
                        self.run(els, dot, out)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(p, body, els) => {
                    let mark = self.vars.len();
                    let decl = p.decl.clone();
                    let plain = Pipe {
                        decl: Vec::new(),
                        cmds: p.cmds.clone(),
                    };
                    let v = self.pipe(&plain, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::Array(a) => a.into_iter().enumerate().map(|(i, x)| (Value::from(i), x)).collect(),
                        Value::Object(o) => o.into_iter().map(|(k, x)| (Value::String(k), x)).collect(),
                        Value::Null => Vec::new(),
                        Value::Number(n) => (0..n.as_u64().unwrap_or(0))
                            .map(|i| (Value::from(i), Value::from(i)))
                            .collect(),
                        other => return Err(format!("range can't iterate over {}", to_text(&other))),
                    };
                    if items.is_empty() {
                        self.run(els, dot, out)?;
                    }
                    for (k, x) in items {
                        let inner = self.vars.len();
                        match decl.as_slice() {
                            [v] => self.vars.push((v.clone(), x.clone())),
                            [i, v] => {
                                self.vars.push((i.clone(), k));
                                self.vars.push((v.clone(), x.clone()));
                            }
                            _ => {}
                        }
                        self.run(body, &x, out)?;
                        self.vars.truncate(inner);
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let items = split(src).map_err(|e| format!("template: :1: {e}"))?;
        let mut pos = 0;
        match parse_list(&items, &mut pos).map_err(|e| format!("template: :1: {e}"))? {
            (nodes, Stop::Eof) => Ok(Template { nodes }),
            (_, Stop::End) => Err("template: :1: unexpected {{end}}".into()),
            (_, Stop::Else(_)) => Err("template: :1: unexpected {{else}}".into()),
        }
    }

    pub fn execute(&self, data: &Value) -> Result<String, String> {
        self.exec(data, false)
    }

    /// Render with `data` holding column headers (for `table` formats).
    pub fn execute_header(&self, data: &Value) -> Result<String, String> {
        self.exec(data, true)
    }

    fn exec(&self, data: &Value, header: bool) -> Result<String, String> {
        let mut out = String::new();
        let mut e = Exec {
            root: data,
            vars: Vec::new(),
            header,
        };
        e.run(&self.nodes, data, &mut out)
            .map_err(|m| format!("template: :1: executing \"\": {m}"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: Value) -> String {
        Template::parse(t).unwrap().execute(&v).unwrap()
    }

    #[test]
    fn fields_functions_and_control() {
        let v = json!({"ID": "abc", "State": {"Pid": 42, "Running": true}, "Env": ["A=1", "B=2"],
                       "Labels": {"x": "y"}, "Names": "n1", "Empty": []});
        assert_eq!(run("{{.ID}} {{.State.Pid}}", v.clone()), "abc 42");
        assert_eq!(run("{{json .Labels}}", v.clone()), r#"{"x":"y"}"#);
        assert_eq!(run("{{join .Env \",\"}}", v.clone()), "A=1,B=2");
        assert_eq!(run("{{range .Env}}[{{.}}]{{end}}", v.clone()), "[A=1][B=2]");
        assert_eq!(
            run("{{range $i, $e := .Env}}{{$i}}={{$e}};{{end}}", v.clone()),
            "0=A=1;1=B=2;"
        );
        assert_eq!(run("{{if .State.Running}}up{{else}}down{{end}}", v.clone()), "up");
        assert_eq!(run("{{if .Empty}}x{{else if .ID}}id{{else}}no{{end}}", v.clone()), "id");
        assert_eq!(run("{{range .Empty}}x{{else}}none{{end}}", v.clone()), "none");
        assert_eq!(run("{{with .State}}{{.Pid}}{{end}}", v.clone()), "42");
        assert_eq!(run("{{.Names | upper}} {{lower \"AB\"}}", v.clone()), "N1 ab");
        assert_eq!(run("{{index .Labels \"x\"}}{{.Labels.nope}}", v.clone()), "y");
        assert_eq!(run("{{.Env}} {{.Labels}}", v.clone()), "[A=1 B=2] map[x:y]");
        assert_eq!(run("a  {{- .ID -}}  b", v.clone()), "aabcb");
        assert_eq!(run("{{/* c */}}{{printf \"%s-%d\" .ID 3}}", v.clone()), "abc-3");
        assert_eq!(
            run(
                "{{if eq .State.Pid 42}}y{{end}}{{if gt .State.Pid 1}}z{{end}}",
                v.clone()
            ),
            "yz"
        );
        assert_eq!(run("{{(index .Env 1)}} {{len .Env}}", v.clone()), "B=2 2");
        assert_eq!(run("{{json \"<a>\"}}", v.clone()), r#""\u003ca\u003e""#);
        assert_eq!(run("{{$x := .ID}}{{$x}}{{$.Names}}", v), "abcn1");
    }

    #[test]
    fn errors() {
        assert!(Template::parse("{{.ID").unwrap_err().contains("unclosed action"));
        assert!(Template::parse("{{if .A}}x").unwrap_err().contains("EOF"));
        let t = Template::parse("{{.Nope}}").unwrap();
        assert!(t.execute(&json!({})).unwrap_err().contains("can't evaluate field Nope"));
        let t = Template::parse("{{nofunc .}}").unwrap();
        assert!(t.execute(&json!({})).unwrap_err().contains("not defined"));
    }

    #[test]
    fn labels_method() {
        let row = json!({"ID": "x", "__labels": {"com.a": "b"}});
        let t = Template::parse("{{.Label \"com.a\"}}").unwrap();
        assert_eq!(t.execute(&row).unwrap(), "b");
        assert_eq!(t.execute_header(&json!({})).unwrap(), "com.a");
    }
}
