import { describe, expect, it } from 'vitest';
import { parseMethodArn } from '../../core/gateway/arn';
import { flattenContext, iamPolicy, statement } from '../../core/gateway/iam';

describe('methodArn parsing', () => {
  it.each([
    ['arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/orgs/acme', { method: 'GET', path: '/orgs/acme', stage: 'prod', apiId: 'abc123' }],
    ['arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/', { method: 'GET', path: '/' }],
    ['arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET', { method: 'GET', path: '/' }],
    ['arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/a:b/c:d', { method: 'GET', path: '/a:b/c:d' }],
    ['arn:aws:execute-api:eu-west-1:123456789012:ws1/dev/$connect', { method: 'GET', path: '/$connect', stage: 'dev' }],
    ['arn:aws-cn:execute-api:cn-north-1:123456789012:abc/$default/POST/x', { partition: 'aws-cn', stage: '$default', method: 'POST' }],
  ])('%s', (arn, expected) => {
    const parsed = parseMethodArn(arn);
    expect(parsed).toMatchObject(expected);
    expect(parsed!.prefix).toBe(arn.slice(0, arn.indexOf('/', arn.indexOf('/') + 1)));
  });

  it.each([
    [''], ['arn'], ['arn:aws:s3:::bucket/key'], ['arn:aws:execute-api:us-east-1:123456789012:abc'], ['arn:aws:execute-api:us-east-1:123456789012:abc/prod'],
    ['arn:aws:execute-api:us-east-1:123456789012:abc/prod/'], ['arn:aws:execute-api:us-east-1:12345678901x:abc/prod/GET/x'], ['arn:aws:execute-api:us-east-1:123:a*c/prod/GET/x'],
    ['arn:aws:execute-api:us-east-1:123456789012:abc/prod/*/x'], ['arn:aws:execute-api:us-east-1:123456789012:abc/prod/get/x'], ['x'.repeat(5000)], [5], [null],
  ])('refuses %j', (arn) => {
    expect(parseMethodArn(arn)).toBeUndefined();
  });
});

describe('IAM answers', () => {
  it('builds a policy with de-duplicated resources', () => {
    const p = iamPolicy('u', [statement('Allow', ['a', 'a', 'b'])], { x: 1 });
    expect(p).toEqual({ principalId: 'u', policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: ['a', 'b'] }] }, context: { x: 1 } });
  });

  it('flattens the context to strings, finite numbers and booleans', () => {
    expect(flattenContext({ a: 's', b: 1, c: true, d: null, e: undefined, f: {}, g: [1], h: NaN, i: Infinity, j: 'x'.repeat(2000) })).toEqual({ a: 's', b: 1, c: true, j: 'x'.repeat(1024) });
  });
});
