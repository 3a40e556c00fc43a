export { iamAllows, type PolicyLike } from '../../local/iam';
