import { describe, expect, it } from 'vitest';
import { credentialKind, findAuthorization, findWebSocketProtocolCredential, parseBearer } from '../../core/identity/credential';

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';

describe('Authorization header parsing', () => {
  it.each([
    ['Bearer abc', 'abc'], ['bearer abc', 'abc'], ['BEARER abc', 'abc'], ['BeArEr abc', 'abc'], ['Bearer  abc', 'abc'],
    ['Bearer abc ', 'abc'], [`Bearer ${JWT}`, JWT], ['Bearer a+b/c=', 'a+b/c='],
  ])('accepts %j', (value, expected) => {
    expect(parseBearer(value)).toBe(expected);
  });

  it.each([
    [''], ['Bearer'], ['Bearer '], ['Basic abc'], ['Bearerabc'], ['Bearer a b'], ['Bearer abc,def'], ['Token abc'],
    ['Bearer a\tb'], ['Bearer a\nb'], ['Bearer "abc"'], [' Bearer abc'], ['Bearer ' + 'a'.repeat(9000)], ['Bearer ab=c'],
    ['Bearer a%00'], [undefined], [null], [42], [['Bearer abc']],
  ])('refuses %j', (value) => {
    expect(parseBearer(value)).toBeUndefined();
  });

  it('finds the header in any case, but only one', () => {
    expect(findAuthorization({ AUTHORIZATION: 'Bearer x' })).toBe('x');
    expect(findAuthorization({ authorization: 'Bearer x' })).toBe('x');
    expect(findAuthorization({ Authorization: 'Bearer x', authorization: 'Bearer y' })).toBeUndefined();
    expect(findAuthorization({ authorization: 'Bearer x, Bearer y' })).toBeUndefined();
    expect(findAuthorization({ authorization: 'Bearer x' }, { authorization: ['Bearer x', 'Bearer y'] })).toBeUndefined();
    expect(findAuthorization({})).toBeUndefined();
    expect(findAuthorization(null)).toBeUndefined();
    expect(findAuthorization({ 'x-authorization': 'Bearer x' })).toBeUndefined();
  });

  it('tells token kinds apart by prefix only', () => {
    expect(credentialKind('gat_abc')).toBe('gatehouse');
    expect(credentialKind(JWT)).toBe('jwt');
    expect(credentialKind('GAT_abc')).toBe('jwt');
  });
});

describe('Sec-WebSocket-Protocol credentials', () => {
  const tok = 'gat_0123456789abcdef_' + 'a'.repeat(38);
  it.each([
    [{ 'Sec-WebSocket-Protocol': tok }, tok],
    [{ 'sec-websocket-protocol': `graphql-ws, ${tok}` }, tok],
    [{ 'sec-websocket-protocol': `bearer, ${JWT}` }, JWT],
    [{ 'sec-websocket-protocol': `bearer.${JWT}` }, JWT],
  ])('accepts %j', (headers, expected) => {
    expect(findWebSocketProtocolCredential(headers)).toBe(expected);
  });

  it.each([
    [{ 'sec-websocket-protocol': 'graphql-ws' }], [{ 'sec-websocket-protocol': `${tok}, ${JWT}` }],
    [{ 'sec-websocket-protocol': '' }], [{}], [{ 'Sec-WebSocket-Protocol': tok, 'sec-websocket-protocol': tok }],
  ])('refuses %j', (headers) => {
    expect(findWebSocketProtocolCredential(headers)).toBeUndefined();
  });
});
