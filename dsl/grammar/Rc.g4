// The rc language: resource types, pure functions and controllers. See docs/language.md.
// ANTLR types stop at the AST builder (dsl/ast_builder.cc).
grammar Rc;

file : importDecl* decl* EOF ;

// Entry for the expressions inside "${...}" string interpolation.
exprOnly : expr EOF ;

importDecl : 'import' STRING ('as' ID)? ';' ;

decl
  : resourceDecl
  | structDecl
  | enumDecl
  | fnDecl
  | controllerDecl
  | constDecl
  ;

// ---- types and schemas ----
resourceDecl : 'resource' ID '{' resourceItem* '}' ;
resourceItem
  : setting
  | 'subresource' ID ('{' setting* '}')? ';'?
  | fieldDecl
  | 'column' STRING (':' typeExpr)? (ID)* '=' expr ';'
  | ruleDecl
  ;

// A validation rule over the enclosing object: false -> 422 naming the field after `for`.
ruleDecl : 'rule' STRING ('for' qualifiedName)? '=' expr ';' ;
setting : ID '=' expr ';' ;

structDecl : 'struct' ID '{' (fieldDecl | ruleDecl)* '}' ;
fieldDecl : name=fieldName ':' typeExpr attribute* ('=' expr attribute*)? ';' ;
fieldName : ident | STRING ;

// Member names may be keywords: Kubernetes objects have fields such as `controller`.
ident
  : ID | 'import' | 'as' | 'resource' | 'subresource' | 'column' | 'struct' | 'enum' | 'map'
  | 'const' | 'fn' | 'controller' | 'primary' | 'owns' | 'watches' | 'by' | 'reconcile' | 'let'
  | 'var' | 'if' | 'else' | 'for' | 'in' | 'return' | 'requeue' | 'after' | 'fail' | 'break'
  | 'continue' | 'with' | 'true' | 'false' | 'null' | 'new' | 'rule'
  ;
attribute : '@' ID ('(' (expr (',' expr)*)? ')')? ;

enumDecl : 'enum' ID '{' (enumValue (',' enumValue)* ','?)? '}' ;
enumValue : ID | STRING ;

typeExpr
  : typeExpr '?'                               # optionalType
  | '[' typeExpr ']'                           # listType
  | 'map' '<' typeExpr '>'                     # mapType
  | qualifiedName                              # namedType
  ;
qualifiedName : ID ('.' ID)* ;

constDecl : 'const' ID (':' typeExpr)? '=' expr ';' ;

// ---- functions and controllers ----
fnDecl : 'fn' ID '(' params? ')' ('->' typeExpr)? (block | '=' expr ';') ;
params : param (',' param)* ;
param : ID ':' typeExpr ;

controllerDecl : 'controller' ID '{' controllerItem* '}' ;
controllerItem
  : 'primary' qualifiedName ';'                           # primaryItem
  | 'owns' qualifiedName ';'                              # ownsItem
  | 'watches' qualifiedName ('by' expr)? ';'              # watchesItem
  | setting                                               # settingItem
  | 'reconcile' '(' param ')' block                       # reconcileItem
  | fnDecl                                                # helperItem
  ;


// ---- statements ----
block : '{' stmt* '}' ;
stmt
  : ('let' | 'var') ID (':' typeExpr)? '=' expr ';'      # letStmt
  | expr '=' expr ';'                                     # assignStmt
  | 'if' expr block ('else' (ifTail | block))?            # ifStmt
  | 'for' ID (',' ID)? 'in' expr block                    # forStmt
  | 'return' expr? ';'                                    # returnStmt
  | 'requeue' 'after' expr ';'                            # requeueStmt
  | 'fail' expr ';'                                       # failStmt
  | 'break' ';'                                           # breakStmt
  | 'continue' ';'                                        # continueStmt
  | block                                                 # blockStmt
  | expr ';'                                              # exprStmt
  ;
ifTail : 'if' expr block ('else' (ifTail | block))? ;

// ---- expressions (lowest precedence last) ----
expr
  : primary                                               # primaryExpr
  | expr '.' ident                                        # fieldExpr
  | expr '?.' ident                                       # safeFieldExpr
  | expr '[' expr ']'                                     # indexExpr
  | expr '(' args? ')'                                    # callExpr
  | expr 'with' objectLit                                 # withExpr
  | op=('!' | '-') expr                                   # unaryExpr
  | expr op=('*' | '/' | '%') expr                        # mulExpr
  | expr op=('+' | '-') expr                              # addExpr
  | expr op=('<' | '<=' | '>' | '>=') expr                # relExpr
  | expr op=('==' | '!=') expr                            # eqExpr
  | expr 'in' expr                                        # inExpr
  | expr '&&' expr                                        # andExpr
  | expr '||' expr                                        # orExpr
  | <assoc=right> expr '??' expr                          # coalesceExpr
  | <assoc=right> expr '?' expr ':' expr                  # condExpr
  | lambdaParams '=>' expr                                # lambdaExpr
  ;
lambdaParams : ID | '(' (ID (',' ID)*)? ')' ;

args : arg (',' arg)* ','? ;
arg : (ID ':')? expr ;

primary
  : INT                                                   # intLit
  | FLOAT                                                 # floatLit
  | STRING                                                # stringLit
  | DURATION                                              # durationLit
  | ('true' | 'false')                                    # boolLit
  | 'null'                                                # nullLit
  | ID                                                    # nameRef
  | '(' expr ')'                                          # parenExpr
  | '[' (expr (',' expr)* ','?)? ']'                      # listLit
  | objectLit                                             # objectExpr
  | 'new' qualifiedName objectLit                         # newExpr
  ;
objectLit : '{' (objectEntry (',' objectEntry)* ','?)? '}' ;
objectEntry : (ident | STRING) ':' expr ;

// ---- lexer ----
DURATION : ([0-9]+ ('ms' | 's' | 'm' | 'h'))+ ;
FLOAT : [0-9]+ '.' [0-9]+ ([eE] [+-]? [0-9]+)? ;
INT : [0-9]+ ;
// Strings may hold "${expr}" interpolations, which may hold strings of their own.
STRING : '"' STR_CHAR* '"' ;
fragment STR_CHAR : '\\' . | '${' INTERP_CHAR* '}' | ~["\\\r\n] ;
fragment INTERP_CHAR : NESTED_STRING | '{' INTERP_CHAR* '}' | ~["{}\r\n] ;
fragment NESTED_STRING : '"' STR_CHAR* '"' ;
ID : [a-zA-Z_] [a-zA-Z_0-9]* ;
DOC_COMMENT : '///' ~[\r\n]* -> channel(2) ;
LINE_COMMENT : '//' ~[\r\n]* -> skip ;
BLOCK_COMMENT : '/*' .*? '*/' -> skip ;
WS : [ \t\r\n]+ -> skip ;
ERROR_CHAR : . ;
